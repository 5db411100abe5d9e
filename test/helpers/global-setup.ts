import fs from 'node:fs';
import pg from 'pg';
import { migrateDatabase } from '../../src/db/migrate';
import { TEST_DATABASE_URL } from './env';
import { LOG_DIR } from './logs';

/** A fresh, migrated test database for every run, so no test depends on what an earlier run left. */
export default async function globalSetup(): Promise<void> {
  fs.rmSync(LOG_DIR, { recursive: true, force: true });
  const url = new URL(TEST_DATABASE_URL);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  await migrateDatabase(TEST_DATABASE_URL, { info: () => undefined });
}
