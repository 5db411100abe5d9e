import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrateDatabase } from '../../src/db/migrate';
import { eventually } from './app';
import { postgresBinary } from './machine';
import { freePort } from './redis-server';

const execFileAsync = promisify(execFile);

export interface OwnPostgres {
  /** A URL of a database on this server (created and migrated by `createDatabase`). */
  url(database: string): string;
  createDatabase(database: string): Promise<string>;
  /** A fast shutdown: open connections are terminated, as in a restart. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes its files. */
  destroy(): Promise<void>;
}

/**
 * A PostgreSQL cluster of a test's own in a temporary folder (initdb + pg_ctl, on a free port), for
 * tests that stop or restart PostgreSQL: the shared server is never touched. initdb refuses to run as
 * root, so as root the cluster belongs to the `postgres` user and is run through runuser.
 */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'companion-pg-'));
  const dataDir = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres:', dir]);
  // Asynchronous: a test may stop the server from inside a fake partner's handler, and a blocking call
  // would freeze the app under test (its partner call timing out) for as long as pg_ctl takes.
  const run = async (binary: string, args: string[]) => {
    const [command, fullArgs] = asRoot ? ['runuser', ['-u', 'postgres', '--', postgresBinary(binary), ...args]] : [postgresBinary(binary), args];
    await execFileAsync(command!, fullArgs as string[], { timeout: 60000, cwd: dir });
  };
  await run('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off`;
  const url = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  const own: OwnPostgres = {
    url,
    async createDatabase(database) {
      await migrateDatabase(url(database), { info: () => undefined });
      return url(database);
    },
    async start() {
      await run('pg_ctl', ['-D', dataDir, '-o', options, '-l', path.join(dir, 'server.log'), '-w', 'start']);
      await eventually(async () => {
        const client = new pg.Client({ connectionString: url('postgres') });
        client.on('error', () => undefined);
        try {
          await client.connect();
          return true as const;
        } catch {
          return undefined;
        } finally {
          await client.end().catch(() => undefined);
        }
      }, 15000);
    },
    async stop() {
      await run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
    },
    async destroy() {
      try {
        await run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // not running
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await own.start();
  return own;
}
