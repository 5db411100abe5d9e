// npm run bench:alloc [-- <build>]: where the bytes a webhook allocates come from. Garbage collection
// follows allocation, so this says what to cut to spend less CPU per request, and, unlike a CPU time,
// it hardly depends on how fast this machine happens to be.
//
// Starts one web process of the build (dist by default) in front of the fake Cloud API, loads it for
// 3 s, then for BENCH_DURATION_S (8) more under V8's sampling heap profiler with collected objects
// kept, and prints the kilobytes allocated per request: in all, by package (Node's own modules count
// for the package that called them) and by function. BENCH_ROUTE: whatsapp (default) or optouts.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { dropDatabase } from '../src/db/migrate';
import {
  benchDatabaseUrl,
  loadWebhook,
  prepareBenchDatabase,
  removeQueues,
  startFakePartner,
  startCompanion,
  until,
  webhookRouteNamed,
  type Child,
} from './lib';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
/** Bytes between samples: small enough for a few hundred samples per second of load. */
const SAMPLING_INTERVAL = 1024;
const TOP = 25;

const log = (line = '') => process.stdout.write(`${line}\n`);

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function connectInspector(webSocketUrl: string) {
  const socket = new WebSocket(webSocketUrl);
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', reject, { once: true });
  });
  let lastId = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  });
  return {
    send<Result>(method: string, params: object = {}): Promise<Result> {
      const id = (lastId += 1);
      return new Promise((resolve) => {
        waiting.set(id, resolve as (result: unknown) => void);
        socket.send(JSON.stringify({ id, method, params }));
      });
    },
    close: () => socket.close(),
  };
}

/** "got", "@pinojs/redact", "companion:app.js", "node:_http_server", "(native)". */
function ownerOf(url: string): string {
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dependency) return dependency[1]!;
  if (url.includes('/dist/')) return `companion:${url.split('/dist/')[1]}`;
  if (url.startsWith('node:')) return `node:${url.slice('node:'.length).split('/')[0]}`;
  return url || '(native)';
}

/** Bytes by function and by package; Node's internals and native code count for the package above them. */
function tally(root: ProfileNode) {
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const add = (totals: Map<string, number>, key: string, bytes: number) => totals.set(key, (totals.get(key) ?? 0) + bytes);
  let total = 0;
  const visit = (node: ProfileNode, caller: string | undefined) => {
    const owner = ownerOf(node.callFrame.url);
    const isRuntime = owner.startsWith('node:') || owner === '(native)';
    add(byFunction, `${node.callFrame.functionName || '(anonymous)'} ${owner}:${node.callFrame.lineNumber + 1}`, node.selfSize);
    add(byPackage, isRuntime ? (caller ?? owner) : owner, node.selfSize);
    total += node.selfSize;
    for (const child of node.children) visit(child, isRuntime ? caller : owner);
  };
  visit(root, undefined);
  return { total, byFunction, byPackage };
}

async function main(build = 'dist'): Promise<void> {
  const entry = path.resolve(build, 'main.js');
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` (npm run bench:alloc does)`);
  const routeName = webhookRouteNamed(process.env.BENCH_ROUTE, 'BENCH_ROUTE');
  const databaseUrl = benchDatabaseUrl('alloc');
  const queuePrefix = `bench-alloc-${randomBytes(4).toString('hex')}`;
  const children: Child[] = [];
  try {
    const token = await prepareBenchDatabase(databaseUrl);
    const fake = await startFakePartner(50);
    children.push(fake);
    const companion = await startCompanion(entry, {
      role: 'web',
      databaseUrl,
      whatsappUrl: `http://127.0.0.1:${fake.port}`,
      queuePrefix,
      nodeOptions: '--inspect=127.0.0.1:0',
    });
    children.push(companion);
    let webSocketUrl = '';
    await until(async () => {
      webSocketUrl = /Debugger listening on (ws:\/\/\S+)/.exec(companion.output())?.[1] ?? '';
      return webSocketUrl !== '';
    }, 10_000);
    const inspector = await connectInspector(webSocketUrl);

    await loadWebhook(companion.port, routeName, token, 3);
    await inspector.send('HeapProfiler.enable');
    await inspector.send('HeapProfiler.startSampling', {
      samplingInterval: SAMPLING_INTERVAL,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const figures = await loadWebhook(companion.port, routeName, token, DURATION_S);
    const { profile } = await inspector.send<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
    inspector.close();
    if (figures.errors + figures.non2xx > 0) throw new Error(`${figures.errors + figures.non2xx} requests failed: ${JSON.stringify(figures.statusCounts)}`);

    const { total, byFunction, byPackage } = tally(profile.head);
    const kbPerRequest = (bytes: number) => (bytes / figures.requests / 1024).toFixed(2).padStart(7);
    const top = (totals: Map<string, number>) => [...totals].sort((a, b) => b[1] - a[1]).slice(0, TOP);
    log(`${routeName}: ${figures.requests} requests (${figures.requestsPerSecond}/s), ${kbPerRequest(total).trim()} KB allocated per request (sampled)`);
    log('\nKB per request, by package');
    for (const [owner, bytes] of top(byPackage)) log(`${kbPerRequest(bytes)}  ${owner}`);
    log('\nKB per request, by function');
    for (const [where, bytes] of top(byFunction)) log(`${kbPerRequest(bytes)}  ${where}`);
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await dropDatabase(databaseUrl);
    await removeQueues([queuePrefix]);
  }
}

main(process.argv[2]).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
