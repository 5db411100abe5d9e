// Benchmark of the WhatsApp template proxy: `npm run bench:whatsapp`.
//
// Starts a fake Cloud API that answers after 50 ms (bench/fake-whatsapp.ts) and the built companion
// (`serve --role web`, a database of its own), then puts the same load, 100 connections for a fixed
// time, once straight at the fake and once through the proxy, and prints both throughputs, their
// ratio and the latency the proxy adds. Talks to 127.0.0.1 only and stops by itself.
//
// Settings (environment): BENCH_DURATION_S (10), BENCH_CONNECTIONS (100), BENCH_UPSTREAM_DELAY_MS (50),
// BENCH_DATABASE_URL (postgresql://postgres@127.0.0.1:5432, a fresh database that is dropped afterwards),
// REDIS_URL (redis://127.0.0.1:6379), BENCH_NODE_OPTIONS (given to the companion's node, e.g. --cpu-prof).
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';

const ROOT = process.cwd();
const MAIN = path.join(ROOT, 'dist', 'main.js');
const FAKE = path.join(__dirname, 'fake-whatsapp.js');

const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 100);
const upstreamDelayMs = Number(process.env.BENCH_UPSTREAM_DELAY_MS ?? 50);
const WARMUP_S = 3;
/** Whatever happens, the run ends by then. */
const WATCHDOG_MS = (4 * durationS + 120) * 1000;

const PHONE_NUMBER_ID = '106540352242922';
const WHATSAPP_TOKEN = 'bench-whatsapp-token';
const TO = '+27820001001';
const TEMPLATE = { name: 'appointment_reminder', language: 'en', params: ['Jane', 'Monday 10:00'] };

const children: ChildProcess[] = [];

function databaseUrl(): string {
  const url = new URL(process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432');
  url.pathname = `/companion_bench_${randomBytes(4).toString('hex')}`;
  return url.toString();
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startFakeUpstream(): Promise<string> {
  const child = fork(FAKE, [], { env: { ...process.env, FAKE_DELAY_MS: String(upstreamDelayMs) }, stdio: 'inherit' });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`fake upstream exited (${code})`)));
  });
  return `http://127.0.0.1:${port}`;
}

/** The companion's CLI, as `npm run companion --` runs it; the last line of stdout. */
function companionCli(args: string[], env: NodeJS.ProcessEnv): string {
  const result = spawnSync(process.execPath, [MAIN, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`companion ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`);
  return result.stdout.trim().split('\n').at(-1) ?? '';
}

async function waitForHealth(baseUrl: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the companion exited (${child.exitCode})`);
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the companion did not answer /healthz within 30 s');
}

interface Measurement {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  responses: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

/** One autocannon run; latencies are kept at full precision (autocannon's own histogram has 1 ms steps). */
async function load(options: { url: string; headers: Record<string, string>; body: object; seconds: number }): Promise<Measurement> {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...options.headers },
        body: JSON.stringify(options.body),
        connections,
        duration: options.seconds,
        timeout: 10,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  latencies.sort((a, b) => a - b);
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    responses: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
  };
}

function row(label: string, m: Measurement): string {
  return [
    label.padEnd(16),
    m.requestsPerSecond.toFixed(0).padStart(8),
    m.p50.toFixed(2).padStart(9),
    m.p99.toFixed(2).padStart(9),
    String(m.errors + m.timeouts).padStart(8),
    String(m.non2xx).padStart(8),
  ].join('');
}

/** CPU seconds a process has used so far (Linux /proc; undefined elsewhere). */
function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

async function main(): Promise<number> {
  if (!fs.existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` (npm run bench:whatsapp does)');
  const database = databaseUrl();
  const upstreamUrl = await startFakeUpstream();
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    LOG_LEVEL: 'info',
    PORT: String(port),
    DATABASE_URL: database,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: `bench-${randomBytes(4).toString('hex')}`,
    WHATSAPP_API: 'cloud',
    WHATSAPP_URL: upstreamUrl,
    WHATSAPP_TOKEN,
    WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID,
    // e.g. BENCH_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=bench/results" to see where the proxy spends its time.
    ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
  };
  try {
    companionCli(['migrate'], env);
    const token = companionCli(['tokens:create', '--name', 'bench'], env);
    // Logs go where production sends them, a pipe nobody reads here; writing them is part of the cost.
    const companion = spawn(process.execPath, [MAIN, 'serve', '--role', 'web'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(companion);
    const proxyUrl = `http://127.0.0.1:${port}`;
    await waitForHealth(proxyUrl, companion);

    const direct = {
      url: `${upstreamUrl}/v26.0/${PHONE_NUMBER_ID}/messages`,
      headers: { authorization: `Bearer ${WHATSAPP_TOKEN}` },
      body: {
        messaging_product: 'whatsapp',
        to: TO,
        type: 'template',
        template: {
          name: TEMPLATE.name,
          language: { code: TEMPLATE.language },
          components: [{ type: 'body', parameters: TEMPLATE.params.map((text) => ({ type: 'text', text })) }],
        },
      },
    };
    const proxied = { url: `${proxyUrl}/api/v1/whatsapp/templates`, headers: { authorization: `Token ${token}` }, body: { to: TO, template: TEMPLATE } };

    // Other work on the machine takes CPU from the proxy: the figures say how busy it was.
    const loadBefore = os.loadavg()[0]!;
    console.log(`warming up (${WARMUP_S} s each)…`);
    await load({ ...direct, seconds: WARMUP_S });
    await load({ ...proxied, seconds: WARMUP_S });
    console.log(`measuring (${durationS} s each)…`);
    const straight = await load({ ...direct, seconds: durationS });
    const cpuBefore = cpuSeconds(companion.pid);
    const through = await load({ ...proxied, seconds: durationS });
    const cpuAfter = cpuSeconds(companion.pid);
    const cpuPerRequestMs =
      cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1000) / through.responses;

    const ratio = through.requestsPerSecond / straight.requestsPerSecond;
    const addedP50 = through.p50 - straight.p50;
    const addedP99 = through.p99 - straight.p99;
    const cpu = os.cpus();
    const machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}`;
    const lines = [
      '',
      `WhatsApp template proxy benchmark, ${new Date().toISOString()}`,
      `machine: ${machine}; Node ${process.version}; load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0]!.toFixed(2)} after`,
      `load: autocannon, ${connections} connections, ${durationS} s per run; fake Cloud API answering after ${upstreamDelayMs} ms; all on 127.0.0.1`,
      '',
      `${'target'.padEnd(16)}${'req/s'.padStart(8)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'non-2xx'.padStart(8)}`,
      row('direct', straight),
      row('through proxy', through),
      '',
      `throughput ratio: ${(ratio * 100).toFixed(1)}% of direct (target >= 90%): ${ratio >= 0.9 ? 'met' : 'MISSED'}`,
      `latency added at p50: ${addedP50.toFixed(2)} ms (target <= 2 ms): ${addedP50 <= 2 ? 'met' : 'MISSED'}`,
      `latency added at p99: ${addedP99.toFixed(2)} ms`,
      ...(cpuPerRequestMs === undefined ? [] : [`companion CPU per proxied request: ${cpuPerRequestMs.toFixed(2)} ms`]),
    ];
    console.log(lines.join('\n'));
    const resultsDir = path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `whatsapp-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ machine, node: process.version, loadBefore, loadAfter: os.loadavg()[0], connections, durationS, upstreamDelayMs, direct: straight, proxy: through, ratio, addedP50, addedP99, cpuPerRequestMs }, null, 2));
    console.log(`results: ${path.relative(ROOT, file)}`);
    const failed = straight.errors + straight.timeouts + straight.non2xx + through.errors + through.timeouts + through.non2xx;
    if (failed > 0) console.error(`${failed} requests failed: the figures above are not comparable`);
    return failed > 0 ? 1 : 0;
  } finally {
    await Promise.all(children.map(stopChild));
    await dropDatabase(database).catch((error: unknown) => console.error(`could not drop ${database}: ${String(error)}`));
  }
}

const watchdog = setTimeout(() => {
  console.error(`the benchmark took longer than ${WATCHDOG_MS / 1000} s: stopping`);
  for (const child of children) child.kill('SIGKILL');
  process.exit(2);
}, WATCHDOG_MS);
watchdog.unref();

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGTERM');
    process.exit(130);
  });
}

// Exits explicitly: a load generator's leftover handle must not keep the run going.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
