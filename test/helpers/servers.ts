import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrateDatabase } from '../../src/db/migrate';

/**
 * Redis and PostgreSQL servers of a test's own, on free ports, for tests that stop, restart or flush
 * them: the shared servers on 6379 and 5432 are never touched.
 */

export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${timeoutMs} ms`);
    await sleep(50);
  }
}

export interface OwnRedis {
  readonly url: string;
  /** Stops the server (its data goes with it: it never saves). */
  stop(): Promise<void>;
  /** Starts it again, empty, on the same port. */
  start(): Promise<void>;
  flushAll(): Promise<void>;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let server: ChildProcess | undefined;
  const answers = async () => {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  };
  const own: OwnRedis = {
    url,
    async start() {
      if (server && server.exitCode === null && server.signalCode === null) return;
      server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await waitFor(`redis-server on port ${port}`, answers);
    },
    async stop() {
      if (!server || server.exitCode !== null || server.signalCode !== null) return;
      const exited = once(server, 'exit');
      server.kill('SIGKILL');
      await exited;
    },
    async flushAll() {
      const client = new Redis(url);
      try {
        await client.flushall();
      } finally {
        client.disconnect();
      }
    },
  };
  await own.start();
  return own;
}

function postgresBinary(name: string): string {
  try {
    return path.join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim(), name);
  } catch {
    return name;
  }
}

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
 * A PostgreSQL cluster in a temporary folder (initdb + pg_ctl). initdb refuses to run as root, so as
 * root the cluster belongs to the `postgres` user and is run through runuser.
 */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'companion-pg-'));
  const dataDir = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres:', dir]);
  const run = (binary: string, args: string[]) => {
    const [command, fullArgs] = asRoot ? ['runuser', ['-u', 'postgres', '--', postgresBinary(binary), ...args]] : [postgresBinary(binary), args];
    execFileSync(command!, fullArgs as string[], { stdio: 'pipe', timeout: 60000, cwd: dir });
  };
  run('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off`;
  const url = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  const own: OwnPostgres = {
    url,
    async createDatabase(database) {
      await migrateDatabase(url(database), { info: () => undefined });
      return url(database);
    },
    async start() {
      run('pg_ctl', ['-D', dataDir, '-o', options, '-l', path.join(dir, 'server.log'), '-w', 'start']);
      await waitFor(`PostgreSQL on port ${port}`, async () => {
        const client = new pg.Client({ connectionString: url('postgres') });
        client.on('error', () => undefined);
        try {
          await client.connect();
          return true;
        } catch {
          return false;
        } finally {
          await client.end().catch(() => undefined);
        }
      });
    },
    async stop() {
      run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
    },
    async destroy() {
      try {
        run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // not running
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await own.start();
  return own;
}
