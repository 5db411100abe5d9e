import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClientService } from '../src/api-clients/service';
import { createDatabase } from '../src/db/client';
import { migrateDatabase } from '../src/db/migrate';
import { OPTOUT_JOBS } from '../src/optouts/queue';
import { TEMPLATE_SEND_JOBS } from '../src/whatsapp/template-sends';

/**
 * Settings every benchmarked companion process gets, as production runs it, with Node flags given here
 * and then any in BENCH_NODE_OPTIONS (a profiler's, say).
 */
export function productionEnv(nodeOptions?: string): NodeJS.ProcessEnv {
  const flags = [nodeOptions, process.env.BENCH_NODE_OPTIONS].filter(Boolean).join(' ');
  return { ...PRODUCTION_SETTINGS, ...(flags ? { NODE_OPTIONS: flags } : {}) };
}

/**
 * The companion as production runs it (NODE_ENV=production), which requires the staff sign-in
 * settings: placeholders do, since no benchmark signs in.
 */
const PRODUCTION_SETTINGS = {
  NODE_ENV: 'production',
  GOOGLE_CLIENT_ID: 'bench',
  GOOGLE_CLIENT_SECRET: 'bench',
  SESSION_SECRET: 'bench-session-secret-bench-session-secret',
  PUBLIC_URL: 'http://127.0.0.1',
  ADMIN_EMAILS: 'bench@example.org',
};

export interface Child {
  process: ChildProcess;
  port: number;
  /** Everything it has written so far (its log file). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Children still running. Whatever way a benchmark ends, they end with it: a worker left behind would
 * go on reconciling the benchmark's database into a queue of its own and skew the next run (seen here).
 */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
// Interrupted (Ctrl-C, say), a process ends without 'exit' unless it exits itself.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

/** Where the children's output goes: bench/results/logs, one file each. */
const LOG_DIR = path.join(__dirname, 'results', 'logs');
let childrenStarted = 0;

/**
 * Starts a node process and waits for its "listening" log line, which carries its port. Its output
 * goes to a file of its own, as a container's logs go to the engine's: read by this process, the
 * load generator, its log lines would take the generator's time (measured: about 4 points of the
 * WhatsApp ratio and a fifth of the ingestion rate).
 */
export async function startChild(args: string[], env: NodeJS.ProcessEnv): Promise<Child> {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  // Named by what runs: "fake-partner", "main-serve-web", …
  const name = args.filter((arg) => !arg.startsWith('-') && arg !== 'tsx').map((arg) => path.parse(arg).name).join('-');
  const logFile = path.join(LOG_DIR, `${name}-${process.pid}-${(childrenStarted += 1)}.log`);
  const log = fs.openSync(logFile, 'w');
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  running.add(child);
  child.on('exit', () => running.delete(child));
  const output = () => fs.readFileSync(logFile, 'utf8');
  const port = await new Promise<number>((resolve, reject) => {
    const fail = (why: string) => {
      clearInterval(poll);
      reject(new Error(`${why} (output in ${logFile}):\n${output()}`));
    };
    const started = Date.now();
    const poll = setInterval(() => {
      const match = /"port":(\d+)[^\n]*listening/.exec(output());
      if (match) {
        clearInterval(poll);
        resolve(Number(match[1]));
      } else if (child.exitCode !== null) fail(`exited with ${child.exitCode}`);
      else if (Date.now() - started > 30_000) fail('not listening within 30 s');
    }, 50);
  });
  return {
    process: child,
    port,
    output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** A database of its own for one benchmark run, on BENCH_DATABASE_URL's server (created by migrating, dropped at the end). */
export function benchDatabaseUrl(benchmark: string): string {
  const url = new URL(process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/companion_bench');
  url.pathname = `/companion_bench_${benchmark}_${randomBytes(4).toString('hex')}`;
  return url.toString();
}

export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The fake Cloud API's number id and token, as the WhatsApp benchmarks configure the companion. */
export const BENCH_WHATSAPP = { phoneNumberId: '106540352242922', token: 'bench-whatsapp-token' };

/**
 * The built companion (`main`) as a production process of `role`: opt-out webhooks and template sends
 * enqueue under `queuePrefix`, templates go to the Cloud API at `whatsappUrl`; `env` adds or overrides
 * settings.
 */
export function startCompanion(
  main: string,
  options: { role: 'web' | 'worker'; databaseUrl: string; whatsappUrl: string; queuePrefix: string; nodeOptions?: string; env?: NodeJS.ProcessEnv },
): Promise<Child> {
  return startChild([main, 'serve', '--role', options.role], {
    ...productionEnv(options.nodeOptions),
    // As in production: info-level request logs (written to a file; writing them is part of the cost).
    LOG_LEVEL: 'info',
    PORT: '0',
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: BENCH_REDIS_URL,
    QUEUE_PREFIX: options.queuePrefix,
    WHATSAPP_API: 'cloud',
    WHATSAPP_URL: options.whatsappUrl,
    WHATSAPP_TOKEN: BENCH_WHATSAPP.token,
    WHATSAPP_PHONE_NUMBER_ID: BENCH_WHATSAPP.phoneNumberId,
    ...options.env,
  });
}

/** Removes the queues (opt-outs, template sends) that benchmarked processes made under these prefixes, jobs and all. */
export async function removeQueues(prefixes: string[]): Promise<void> {
  const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: null });
  try {
    for (const prefix of prefixes) {
      for (const { queueName } of [OPTOUT_JOBS, TEMPLATE_SEND_JOBS]) {
        const queue = new Queue(queueName, { connection: redis, prefix });
        await queue.obliterate({ force: true });
        await queue.close();
      }
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * A bench database with the companion's schema and an API client: its token. The database is
 * dropped by the caller (dropDatabase).
 */
export async function prepareBenchDatabase(databaseUrl: string): Promise<string> {
  await migrateDatabase(databaseUrl, { info: () => undefined });
  const db = createDatabase({ url: databaseUrl, poolSize: 1 });
  try {
    return (await createApiClientService(db).create('bench')).token;
  } finally {
    await db.$disconnect();
  }
}

/**
 * The fake partner (bench/fake-partner.ts) in a process of its own, answering `delayMs` after each
 * request; with `recordCalls`, keeping each WhatsApp call for fakeCalls.
 */
export function startFakePartner(delayMs: number, options: { recordCalls?: boolean } = {}): Promise<Child> {
  return startChild(['--import', 'tsx', path.join(__dirname, 'fake-partner.ts')], {
    PORT: '0',
    FAKE_DELAY_MS: String(delayMs),
    ...(options.recordCalls ? { FAKE_RECORD_CALLS: '1' } : {}),
  });
}

/** The WhatsApp calls a fake partner started with `recordCalls` has had: when each arrived (ms since the epoch) and its `to`. */
export async function fakeCalls(fake: Child): Promise<Array<{ at: number; to: string }>> {
  const calls = (await (await fetch(`http://127.0.0.1:${fake.port}/calls`)).json()) as Array<[number, string]>;
  return calls.map(([at, to]) => ({ at, to }));
}

/** What the WhatsApp benchmarks ask the companion to send. */
export const BENCH_TEMPLATE_REQUEST = { to: '+27820001001', template: { name: 'appointment_reminder', language: 'en', params: ['Jane', 'Monday 10:00'] } };
const TEMPLATE_BODY = JSON.stringify(BENCH_TEMPLATE_REQUEST);

/** The webhooks a benchmark can load, with the concurrency the benchmarks use for each and a body per request. */
export const WEBHOOK_ROUTES = {
  whatsapp: { path: '/api/v1/whatsapp/templates', connections: 100, body: () => TEMPLATE_BODY },
  optouts: { path: '/api/v1/optouts', connections: 50, body: optoutWebhookBody },
};
export type WebhookRouteName = keyof typeof WEBHOOK_ROUTES;

/** The route an environment variable names (whatsapp when unset). */
export function webhookRouteNamed(name: string | undefined, variable: string): WebhookRouteName {
  const routeName = name ?? 'whatsapp';
  if (!(routeName in WEBHOOK_ROUTES)) throw new Error(`${variable} must be one of ${Object.keys(WEBHOOK_ROUTES).join(', ')}`);
  return routeName as WebhookRouteName;
}

/** Loads one webhook of a companion for `seconds`, each request with its own body. */
export function loadWebhook(port: number, routeName: WebhookRouteName, token: string, seconds: number, connections?: number): Promise<LoadFigures> {
  const route = WEBHOOK_ROUTES[routeName];
  return load({
    url: `http://127.0.0.1:${port}`,
    connections: connections ?? route.connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: route.path,
        headers: { 'content-type': 'application/json', authorization: `Token ${token}` },
        setupRequest: (request) => ({ ...request, body: route.body() }),
      },
    ],
  });
}

/** A RapidPro opt-out webhook's body, for a contact never seen before. */
export function optoutWebhookBody(): string {
  return JSON.stringify({
    contact: { uuid: randomUUID(), name: 'Nurse', urn: 'whatsapp:27820001001' },
    flow: { uuid: 'bead76f5-dac4-4c9d-996c-c62b326e8c0a', name: 'NurseConnect opt-out' },
    results: { optout_reason: { value: 'job change', category: 'job_change' } },
    run: { uuid: randomUUID() },
  });
}

/** Garbage collections a companion has made so far, from its /metrics (prom-client's `nodejs_gc_duration_seconds`). */
export async function gcTotals(port: number): Promise<{ scavenges: number; seconds: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
  return {
    scavenges: sum(/^nodejs_gc_duration_seconds_count\{[^}]*kind="minor"[^}]*\} (\S+)$/gm),
    seconds: sum(/^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm),
  };
}

/** Peak resident set size of a running process, from the kernel's high-water mark (Linux). */
export function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export interface LoadFigures {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  non2xx: number;
  statusCounts: Record<string, number>;
}

/** CPU seconds (user + system) a running process has used so far, from the kernel (Linux). */
export function cpuSeconds(pid: number): number {
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s.
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs a load against `server` and adds the CPU time that process spent per request answered, in ms. */
export async function withCpuPerRequest<Figures extends { requests: number }>(server: Child, run: () => Promise<Figures>): Promise<Figures & { cpuMsPerRequest: number }> {
  const before = cpuSeconds(server.process.pid!);
  const figures = await run();
  const cpuMsPerRequest = Number((((cpuSeconds(server.process.pid!) - before) * 1000) / figures.requests).toFixed(3));
  return { ...figures, cpuMsPerRequest };
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

/**
 * Runs autocannon against 127.0.0.1 and reduces its result to the figures docs/PERFORMANCE.md reports.
 * p50 and p99 come from every 2xx answer's own time, to the microsecond (autocannon's histogram has 1 ms steps).
 */
export async function load(options: autocannon.Options): Promise<LoadFigures> {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ ...options }, (error, finished) => (error ? reject(error) : resolve(finished)));
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  latencies.sort((a, b) => a - b);
  const precise = (fraction: number, fallback: number) => (latencies.length > 0 ? Number(percentile(latencies, fraction).toFixed(2)) : fallback);
  const statusCounts = (result as unknown as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {};
  return {
    requests: result.requests.total,
    seconds: Number(result.duration.toFixed(1)),
    requestsPerSecond: Math.round(result.requests.total / result.duration),
    p50Ms: precise(0.5, result.latency.p50),
    p99Ms: precise(0.99, result.latency.p99),
    maxMs: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    statusCounts: Object.fromEntries(Object.entries(statusCounts).map(([status, stat]) => [status, stat.count])),
  };
}

/**
 * Sends `amount` POSTs to `path` at `rate` a second, evenly spaced, over at most `connections`
 * kept-alive connections, and times each from when it was due. (autocannon's rates send each second's
 * share in a burst at its start.) A request due while every connection is busy waits for one.
 */
export async function paced(options: { port: number; path: string; headers: Record<string, string>; body: () => string; rate: number; amount: number; connections: number }): Promise<LoadFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  let errors = 0;
  const send = () =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const body = options.body();
      const headers = { ...options.headers, 'content-length': String(Buffer.byteLength(body)) };
      const request = http.request({ host: '127.0.0.1', port: options.port, path: options.path, method: 'POST', headers, agent }, (response) => {
        response.resume();
        response.on('end', () => {
          const status = response.statusCode!;
          statusCounts[status] = (statusCounts[status] ?? 0) + 1;
          if (status >= 200 && status < 300) latencies.push(performance.now() - started);
          resolve();
        });
      });
      request.on('error', () => {
        errors += 1;
        resolve();
      });
      request.end(body);
    });
  const begun = performance.now();
  const answers: Promise<void>[] = [];
  while (answers.length < options.amount) {
    const due = Math.min(options.amount, Math.floor(((performance.now() - begun) * options.rate) / 1000) + 1);
    while (answers.length < due) answers.push(send());
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(answers);
  const seconds = (performance.now() - begun) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const answered = Object.values(statusCounts).reduce((sum, count) => sum + count, 0);
  const ms = (value: number | undefined) => Number((value ?? 0).toFixed(2));
  return {
    requests: answered,
    seconds: Number(seconds.toFixed(1)),
    requestsPerSecond: Math.round(answered / seconds),
    p50Ms: ms(percentile(latencies, 0.5)),
    p99Ms: ms(percentile(latencies, 0.99)),
    maxMs: ms(latencies.at(-1)),
    errors,
    non2xx: answered - latencies.length,
    statusCounts,
  };
}

/**
 * Runs a benchmark and exits with the code it returns, explicitly: a load generator's leftover handle
 * must not keep the run going. Past `watchdogMs` it stops whatever happens, and its children with it.
 */
export function runBenchmark(main: () => Promise<number>, watchdogMs: number): void {
  const watchdog = setTimeout(() => {
    process.stdout.write(`the benchmark took longer than ${watchdogMs / 1000} s: stopping\n`);
    process.exit(2);
  }, watchdogMs);
  watchdog.unref();
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}

export async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * How fast this machine runs JavaScript right now: milliseconds for a fixed amount of JSON work of
 * the kind the companion does. Figures from two runs compare only when these are close; the same
 * machine has been seen several times slower from one day to the next.
 */
export function cpuCalibrationMs(): number {
  const body = JSON.stringify({
    contact: { uuid: '5b4c7b5e-4ad0-4d0c-9a3e-1f0b9a1c2d3e', name: 'Nurse', urn: 'whatsapp:27820001001' },
    flow: { uuid: 'bead76f5-dac4-4c9d-996c-c62b326e8c0a', name: 'NurseConnect opt-out' },
    results: { optout_reason: { value: 'job change', category: 'job_change' } },
  });
  const started = performance.now();
  let length = 0;
  for (let round = 0; round < 100_000; round += 1) length += JSON.stringify(JSON.parse(body)).length;
  if (length === 0) throw new Error('unreachable: keeps the loop from being optimised away');
  return Math.round(performance.now() - started);
}

/** True when two calibrations of one run differ by more than a quarter: the machine changed speed (or its clock) mid-run. */
export function speedChanged(beforeMs: number, afterMs: number): boolean {
  return Math.abs(beforeMs - afterMs) > 0.25 * Math.min(beforeMs, afterMs);
}

export const SPEED_CHANGED_WARNING =
  'WARNING: the machine changed speed during the run (the calibrations differ, or a figure is impossible): run again before using these figures';
