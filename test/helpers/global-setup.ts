import fs from 'node:fs';
import path from 'node:path';
import { dropDatabase, migrateDatabase } from '../../src/db/migrate';
import { TEST_DATABASE_URL } from './env';
import { LOG_DIR, LOGS_ROOT } from './logs';
import checkMachine from './machine';

/** Whether the process `pid` still runs. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Before the run: the machine has what the tests need; the log folders of earlier runs that are over are
 * removed (the last one is kept until then); and the run's database is created afresh and migrated, so
 * no test depends on what an earlier run left.
 */
export default async function globalSetup(): Promise<void> {
  checkMachine();
  const folders = fs.existsSync(LOGS_ROOT) ? fs.readdirSync(LOGS_ROOT) : [];
  for (const name of folders.filter((folder) => !/^\d+$/.test(folder) || !running(Number(folder)))) {
    fs.rmSync(path.join(LOGS_ROOT, name), { recursive: true, force: true });
  }
  fs.rmSync(LOG_DIR, { recursive: true, force: true });
  await dropDatabase(TEST_DATABASE_URL);
  try {
    await migrateDatabase(TEST_DATABASE_URL, { info: () => undefined });
  } catch (error) {
    await dropDatabase(TEST_DATABASE_URL).catch(() => undefined);
    throw error;
  }
}
