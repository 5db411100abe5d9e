// Tests run TypeScript through ts-jest compiled to CommonJS (type checking is `tsc --noEmit`'s job).
// oauth2-mock-server and its dependencies (basic-auth, jose), the wasm engine, and got and those of its
// dependencies that have no CommonJS build ship only ESM, so they are transformed too.
const esmOnly = [
  'oauth2-mock-server',
  'basic-auth',
  'jose',
  '@prisma/schema-engine-wasm',
  'got',
  '@sindresorhus/is',
  '@sec-ant/readable-stream',
  'byte-counter',
  'cacheable-request',
  'chunk-data',
  'decompress-response',
  'get-stream',
  'is-stream',
  'lowercase-keys',
  'mimic-response',
  'normalize-url',
  'responselike',
  'uint8array-extras',
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(ts|js|mjs)$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  testTimeout: 30000,
  maxWorkers: 2,
};
