import { randomUUID } from 'node:crypto';
import { dropDatabase, migrateDatabase } from '../../src/db/migrate';

/**
 * The database of this test run, so that runs at the same time never share one: companion_test_<random>
 * unless TEST_DATABASE_URL names one. Set in process.env when jest's parent process (global-setup) first
 * loads this file, so that its test workers inherit it; global-setup creates and migrates it,
 * global-teardown drops it.
 */
export const TEST_DATABASE_URL = (process.env.TEST_DATABASE_URL ??= `postgresql://postgres@127.0.0.1:5432/companion_test_${randomUUID().slice(0, 8)}`);
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The staff sign-in and metrics secrets the tests configure: the run's log check looks for each. */
export const APP_SECRETS = {
  googleClientSecret: 'test-client-secret',
  sessionSecret: 'a-test-session-secret-of-at-least-32-characters',
  metricsToken: 'scrape-secret',
};

/** Environment for one test app: its own queue prefix keeps test files apart in the shared Redis. */
export function testEnvironment(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: `test-${randomUUID().slice(0, 8)}`,
    ...overrides,
  };
}

/**
 * A fresh, migrated database of one test file's own on the test server: everything in it was written
 * by that file, so it may count every row. Drop it afterwards.
 */
export async function createScratchDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${url.pathname.slice(1)}_${label}_${randomUUID().slice(0, 8)}`;
  await migrateDatabase(url.toString(), { info: () => undefined });
  return { url: url.toString(), drop: () => dropDatabase(url.toString()) };
}
