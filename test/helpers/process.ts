import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { testEnvironment } from './env';
import { LOG_DIR } from './logs';

/** The built CLI (`npm test` builds first), as `npm run companion --` runs it. */
export const MAIN = path.join(__dirname, '..', '..', 'dist', 'main.js');

export interface CompanionProcess {
  child: ChildProcessWithoutNullStreams;
  /** Everything the process wrote to stdout so far (JSON log lines). */
  output(): string;
  /** Resolves with the port once the process logs that it listens. */
  listening: Promise<number>;
  exited: Promise<number | null>;
}

/** Runs `companion <args>` as a child process with the test environment plus `env`. */
export function startCompanion(args: string[], env: Record<string, string | undefined> = {}): CompanionProcess {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH, ...testEnvironment({ LOG_LEVEL: 'info', PORT: '0', ...env }) },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const listening = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening within 20 s:\n${output}`)), 20000);
    child.stdout.on('data', () => {
      const match = /"port":(\d+)[^\n]*listening/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before listening:\n${output}`));
    });
  });
  // Awaited only by tests that expect the process to listen.
  listening.catch(() => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Its log lines join the test apps' for the run's log check (global-teardown).
  child.on('close', () => {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    fs.writeFileSync(path.join(LOG_DIR, `process-${child.pid}.jsonl`), output);
  });
  return { child, output: () => output, listening, exited };
}
