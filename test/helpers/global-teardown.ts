import fs from 'node:fs';
import path from 'node:path';
import { dropDatabase } from '../../src/db/migrate';
import { TEST_DATABASE_URL } from './env';
import { findLeaks, LOG_DIR } from './logs';

function checkLogs(): void {
  const files = fs.existsSync(LOG_DIR) ? fs.readdirSync(LOG_DIR).filter((name) => name.endsWith('.jsonl')) : [];
  let lines = 0;
  const leaks: string[] = [];
  for (const name of files) {
    const text = fs.readFileSync(path.join(LOG_DIR, name), 'utf8');
    lines += text.split('\n').length - 1;
    leaks.push(...findLeaks(text).map((leak) => `${name}: ${leak}`));
  }
  if (leaks.length > 0) throw new Error(`the test run's logs hold what they must never hold:\n${leaks.join('\n')}`);
  process.stdout.write(`\nlog check: ${lines} log lines of the test apps hold no token, secret or full phone number\n`);
}

/**
 * After the whole run, also when tests failed: the run's database is dropped, and no log line of any
 * test app or companion process holds a token, a secret or a full phone number.
 */
export default async function globalTeardown(): Promise<void> {
  try {
    checkLogs();
  } finally {
    await dropDatabase(TEST_DATABASE_URL);
  }
}
