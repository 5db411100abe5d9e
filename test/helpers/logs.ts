import fs from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger } from '../../src/ops/logger';
import { APP_SECRETS } from './env';
import { PARTNER_SECRETS } from './fake-partner';

/** Every test run's log folder is in here, named by the process id of the run's jest. */
export const LOGS_ROOT = path.join(__dirname, '..', '..', 'test-artifacts', 'logs');

/**
 * Every test app logs everything (level trace) into this run's folder, one file per Jest worker process;
 * global-teardown fails the run if any line in it holds a token, a secret or a full phone number (the
 * contract says logs never do). Set in process.env when jest's parent process first loads this file,
 * so that its test workers inherit it and a run at the same time has a folder of its own.
 */
export const LOG_DIR = (process.env.TEST_LOG_DIR ??= path.join(LOGS_ROOT, String(process.pid)));

const SECRET_TEXTS = [
  PARTNER_SECRETS.rapidproToken,
  PARTNER_SECRETS.openhimPassword,
  PARTNER_SECRETS.dhis2Token,
  PARTNER_SECRETS.dhis2Password,
  PARTNER_SECRETS.whatsappToken,
  ...Object.values(APP_SECRETS),
  // What leaked Basic Authorization headers would show.
  Buffer.from(`${PARTNER_SECRETS.openhimUsername}:${PARTNER_SECRETS.openhimPassword}`).toString('base64'),
  Buffer.from(`${PARTNER_SECRETS.dhis2Username}:${PARTNER_SECRETS.dhis2Password}`).toString('base64'),
];

const LEAK_PATTERNS: Array<[string, RegExp]> = [
  ['an API token', /cmp_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/],
  // 9 to 15 digits standing alone (not inside a UUID, a hex id or a word): a phone number, masked ones have '*'.
  ['a full phone number', /(?<![\w.*-])\+?\d{9,15}(?![\w*-])/],
  // A Cloud API message id is base64 of the recipient's number.
  ['a WhatsApp message id', /wamid\.[A-Za-z0-9+/=_-]{8,}/],
  ['a credential field that is not redacted', /"(authorization|password|secret|token|cookie)":"(?!\[redacted\])[^"]/i],
];

/** What in `text` looks like a leak: one description per finding, with the text around it. */
export function findLeaks(text: string, extraSecrets: string[] = []): string[] {
  const found: string[] = [];
  const context = (index: number) => text.slice(Math.max(0, index - 60), index + 80).replace(/\n/g, ' ');
  for (const secret of [...SECRET_TEXTS, ...extraSecrets]) {
    const index = text.indexOf(secret);
    if (index >= 0) found.push(`a secret ("${secret.slice(0, 4)}…"): …${context(index)}…`);
  }
  for (const [what, pattern] of LEAK_PATTERNS) {
    const match = new RegExp(pattern.source, `${pattern.flags}g`).exec(text);
    if (match) found.push(`${what}: …${context(match.index)}…`);
  }
  return found;
}

export interface CapturedLogs {
  logger: Logger;
  /** This logger's lines, as written. */
  lines: string[];
}

/** A trace-level logger whose lines are kept in memory and appended to this process's file in LOG_DIR. */
export function captureLogs(): CapturedLogs {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const file = path.join(LOG_DIR, `jest-${process.pid}.jsonl`);
  const lines: string[] = [];
  const destination = {
    write(line: string) {
      lines.push(line);
      fs.appendFileSync(file, line);
    },
  };
  return { logger: createLogger({ level: 'trace', destination }), lines };
}
