import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

/** A free TCP port on 127.0.0.1, as the OS hands it out. */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A private Redis (or Sentinel) for tests that must stop or break Redis without touching the shared one. */
export interface PrivateRedis {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Sends the server a signal (SIGSTOP freezes it: connections stay open and nothing answers). */
  signal(signal: NodeJS.Signals): void;
}

async function launch(args: string[], port: number): Promise<PrivateRedis> {
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (/Ready to accept connections|Sentinel ID is/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
    signal: (signal) => child.kill(signal),
  };
}

const BASE_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];

export async function startPrivateRedis(extraArgs: string[] = []): Promise<PrivateRedis> {
  const port = await freePort();
  return launch(['--port', String(port), ...BASE_ARGS, ...extraArgs], port);
}

/** A private Redis that a test may also flush, stop, and start again (empty) on the same port. */
export interface RestartableRedis {
  readonly url: string;
  flushAll(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP) until thawed: it keeps its connections and answers nothing. */
  freeze(): void;
  thaw(): void;
}

export async function startRestartableRedis(): Promise<RestartableRedis> {
  const port = await freePort();
  let server: PrivateRedis | undefined;
  const own: RestartableRedis = {
    url: `redis://127.0.0.1:${port}`,
    async flushAll() {
      const client = new Redis(own.url);
      try {
        await client.flushall();
      } finally {
        client.disconnect();
      }
    },
    async stop() {
      await server?.stop();
      server = undefined;
    },
    async start() {
      server ??= await launch(['--port', String(port), ...BASE_ARGS], port);
    },
    freeze: () => server?.signal('SIGSTOP'),
    thaw: () => server?.signal('SIGCONT'),
  };
  await own.start();
  return own;
}

/** A Sentinel watching `primaryPort` under `name` (Sentinel needs a config file it can rewrite). */
export async function startSentinel(primaryPort: number, name: string): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'companion-sentinel-'));
  const configFile = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(configFile, `port ${port}\nbind 127.0.0.1\nsentinel monitor ${name} 127.0.0.1 ${primaryPort} 1\n`);
  return launch([configFile, '--sentinel'], port);
}

/** A three-node Redis Cluster with no replicas; `nodes` is REDIS_CLUSTER_NODES' form. */
export async function startRedisCluster(): Promise<{ nodes: string; stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'companion-cluster-'));
  const servers = await Promise.all(
    [0, 1, 2].map(async (index) =>
      startPrivateRedis(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${index}.conf`, '--dir', dir]),
    ),
  );
  const nodes = servers.map((server) => `127.0.0.1:${server.port}`);
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  const deadline = Date.now() + 15000;
  for (;;) {
    const states = servers.map((server) => execFileSync('redis-cli', ['-p', String(server.port), 'cluster', 'info']).toString());
    if (states.every((info) => info.includes('cluster_state:ok'))) break;
    if (Date.now() > deadline) throw new Error('the cluster did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    nodes: nodes.join(','),
    stop: async () => {
      await Promise.all(servers.map((server) => server.stop()));
    },
  };
}
