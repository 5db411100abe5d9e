// The fault scenarios (test/faults/*.faults.ts), run after the rest of the suite by `npm test`, one at
// a time: they start their own PostgreSQL and Redis and run the built CLI as web and worker processes.
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['**/*.faults.ts'],
  // No database of the run's (each scenario makes its own on its own server): only the machine check.
  globalSetup: '<rootDir>/test/helpers/machine.ts',
  globalTeardown: undefined,
  testTimeout: 300000,
  maxWorkers: 1,
};
