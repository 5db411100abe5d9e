// npm run bench:sends [-- --sends N]: queued WhatsApp template sends at WHATSAPP_SEND_RATE.
//
// For each rate limit in turn (80, then 500 a second): a fake Cloud API answering after 50 ms
// (bench/fake-partner.ts, recording each call), the built companion's web process on a database of its
// own, N sends (10,000) queued through POST /api/v1/whatsapp/template-sends from 50 connections, then a
// worker process (`serve --role worker`) with WHATSAPP_SEND_RATE set, which sends the backlog. Prints,
// per rate, the rate sustained at the fake API and its share of the limit, the most calls in any one
// second, CPU per send of the worker (and of the web process per enqueue), and whether every send
// ended `sent` with exactly one call. Exits 1 if a send was lost or doubled (or an enqueue failed).
//
// Environment: BENCH_SENDS (10000; `--sends N` wins), BENCH_SEND_RATES (80,500), BENCH_UPSTREAM_DELAY_MS
// (50), BENCH_BUILD (dist; alternate two builds to compare them), BENCH_DATABASE_URL (a server; the
// database name is made up), BENCH_REDIS_URL, BENCH_NODE_OPTIONS.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createDatabase } from '../src/db/client';
import { dropDatabase } from '../src/db/migrate';
import { limiterFor } from '../src/jobs/worker';
import {
  BENCH_TEMPLATE_REQUEST,
  SPEED_CHANGED_WARNING,
  benchDatabaseUrl,
  cpuCalibrationMs,
  cpuSeconds,
  fakeCalls,
  load,
  peakRssMb,
  prepareBenchDatabase,
  removeQueues,
  runBenchmark,
  speedChanged,
  startCompanion,
  startFakePartner,
  until,
  withCpuPerRequest,
  type Child,
} from './lib';

const { values: args } = parseArgs({ options: { sends: { type: 'string' } } });
const SENDS = Number(args.sends ?? process.env.BENCH_SENDS ?? 10_000);
const RATES = (process.env.BENCH_SEND_RATES ?? '80,500').split(',').map(Number);
const UPSTREAM_DELAY_MS = Number(process.env.BENCH_UPSTREAM_DELAY_MS ?? 50);
const ENQUEUE_CONNECTIONS = 50;
/** The share of the limit the sends must sustain (the target). */
const TARGET_SHARE = 0.95;
/** How long one rate's backlog may take before the run gives up waiting: three times what the limit allows, and a minute. */
const drainTimeoutMs = (rate: number) => ((3 * SENDS) / rate + 60) * 1000;
/** Whatever happens, the run ends by then. */
const WATCHDOG_MS = RATES.reduce((total, rate) => total + drainTimeoutMs(rate) + 120_000, 0);
const MAIN = path.resolve(process.env.BENCH_BUILD ?? path.join(__dirname, '..', 'dist'), 'main.js');

const log = (line = '') => process.stdout.write(`${line}\n`);

/** The recipient of the `index`th send: each send its own, so that the fake's calls can be matched to rows. */
const recipientOf = (index: number) => `+2782${1_000_000 + index}`;
const digitsOf = (phone: string) => phone.replace(/\D/g, '');

interface RateFigures {
  rateLimit: number;
  workerConcurrency: number | undefined;
  sends: number;
  accepted: number;
  enqueuePerSecond: number;
  webCpuMsPerEnqueue: number;
  sent: number;
  calls: number;
  /** Sends accepted that did not end `sent` after one call at least. */
  lost: number;
  /** Sends the fake API was called for more than once. */
  doubled: number;
  /** From the first call to the last. */
  seconds: number;
  sustainedPerSecond: number | undefined;
  shareOfLimit: number | undefined;
  /** The most calls in any one second (sliding), over the whole run and over the steady part. */
  maxInOneSecond: number;
  steadyMaxInOneSecond: number;
  workerCpuMsPerSend: number;
  /** The worker's CPU time over the time it took, in cores: near 1 is its one JavaScript thread saturated. */
  workerCores: number;
  workerPeakRssMb: number;
}

/** Queues SENDS sends through the HTTP route, ENQUEUE_CONNECTIONS at a time, each to its own recipient. */
async function enqueueSends(port: number, token: string) {
  let next = 0;
  return load({
    url: `http://127.0.0.1:${port}`,
    connections: ENQUEUE_CONNECTIONS,
    amount: SENDS,
    requests: [
      {
        method: 'POST',
        path: '/api/v1/whatsapp/template-sends',
        headers: { 'content-type': 'application/json', authorization: `Token ${token}` },
        setupRequest: (request) => ({ ...request, body: JSON.stringify({ ...BENCH_TEMPLATE_REQUEST, to: recipientOf((next += 1)) }) }),
      },
    ],
  });
}

/** The calls' times (sorted) without the first second (the worker warming up) and the last (the tail). */
const steadyPart = (times: number[]) => times.filter((time) => time >= times[0]! + 1000 && time <= times.at(-1)! - 1000);

/**
 * Sends a second over the steady part, measured between calls a whole number of limiter windows
 * apart: BullMQ's limiter starts a window's jobs in a burst, and counting whole windows keeps where
 * the bursts fall from biasing the figure. Undefined when the steady part is shorter than one window.
 */
function sustainedRate(times: number[], rateLimit: number): number | undefined {
  const steady = steadyPart(times);
  const { max } = limiterFor(rateLimit);
  const windows = Math.floor((steady.length - 1) / max);
  if (windows < 1) return undefined;
  const last = windows * max;
  return last / ((steady[last]! - steady[0]!) / 1000);
}

/** The most calls in any one second (a sliding window). */
function maxInOneSecond(times: number[]): number {
  let most = 0;
  let start = 0;
  for (let end = 0; end < times.length; end += 1) {
    while (times[end]! - times[start]! >= 1000) start += 1;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

async function benchRate(rateLimit: number): Promise<RateFigures> {
  const databaseUrl = benchDatabaseUrl('sends');
  const queuePrefix = `bench-sends-${rateLimit}-${randomBytes(4).toString('hex')}`;
  const children: Child[] = [];
  try {
    const token = await prepareBenchDatabase(databaseUrl);
    const fake = await startFakePartner(UPSTREAM_DELAY_MS, { recordCalls: true });
    children.push(fake);
    const companion = { databaseUrl, whatsappUrl: `http://127.0.0.1:${fake.port}`, queuePrefix };
    const web = await startCompanion(MAIN, { role: 'web', ...companion });
    children.push(web);

    log(`limit ${rateLimit}/s: queueing ${SENDS} sends…`);
    const enqueue = await withCpuPerRequest(web, () => enqueueSends(web.port, token));
    const accepted = enqueue.statusCounts['202'] ?? 0;

    log(`limit ${rateLimit}/s: sending them…`);
    const worker = await startCompanion(MAIN, { role: 'worker', ...companion, env: { WHATSAPP_SEND_RATE: String(rateLimit) } });
    children.push(worker);
    const cpuBefore = cpuSeconds(worker.process.pid!);
    const started = Date.now();
    const db = createDatabase({ url: databaseUrl, poolSize: 1 });
    try {
      await until(async () => (await db.templateSend.count({ where: { status: 'queued' } })) === 0, drainTimeoutMs(rateLimit), 200).catch(() =>
        log(`limit ${rateLimit}/s: sends still queued after ${drainTimeoutMs(rateLimit) / 1000} s`),
      );
      const workerCpuMs = (cpuSeconds(worker.process.pid!) - cpuBefore) * 1000;
      const workerCores = workerCpuMs / (Date.now() - started);
      const workerPeakRssMb = peakRssMb(worker.process.pid!);
      const calls = await fakeCalls(fake);
      const rows = await db.templateSend.findMany({ select: { recipient: true, status: true, messageId: true } });

      const callsTo = new Map<string, number>();
      for (const call of calls) callsTo.set(digitsOf(call.to), (callsTo.get(digitsOf(call.to)) ?? 0) + 1);
      const sent = rows.filter((row) => row.status === 'sent' && row.messageId !== null && callsTo.has(digitsOf(row.recipient))).length;
      const times = calls.map((call) => call.at).sort((a, b) => a - b);
      const sustainedPerSecond = sustainedRate(times, rateLimit);
      const concurrency = /"concurrency":(\d+)[^\n]*sending queued WhatsApp templates/.exec(worker.output())?.[1];
      return {
        rateLimit,
        workerConcurrency: concurrency === undefined ? undefined : Number(concurrency),
        sends: SENDS,
        accepted,
        enqueuePerSecond: enqueue.requestsPerSecond,
        webCpuMsPerEnqueue: enqueue.cpuMsPerRequest,
        sent,
        calls: calls.length,
        lost: accepted - sent,
        doubled: [...callsTo.values()].filter((count) => count > 1).length,
        seconds: times.length > 1 ? (times.at(-1)! - times[0]!) / 1000 : 0,
        sustainedPerSecond,
        shareOfLimit: sustainedPerSecond === undefined ? undefined : sustainedPerSecond / rateLimit,
        maxInOneSecond: maxInOneSecond(times),
        steadyMaxInOneSecond: maxInOneSecond(steadyPart(times)),
        workerCpuMsPerSend: calls.length > 0 ? workerCpuMs / calls.length : 0,
        workerCores,
        workerPeakRssMb,
      };
    } finally {
      await db.$disconnect();
    }
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await dropDatabase(databaseUrl).catch((error: unknown) => log(`could not drop the bench database: ${String(error)}`));
    await removeQueues([queuePrefix]);
  }
}

function printTable(results: RateFigures[]) {
  const columns: Array<[string, (figures: RateFigures) => string]> = [
    ['limit/s', (f) => String(f.rateLimit)],
    ['concurrency', (f) => String(f.workerConcurrency ?? '?')],
    ['sent', (f) => `${f.sent}/${f.sends}`],
    ['seconds', (f) => f.seconds.toFixed(1)],
    ['steady/s', (f) => f.sustainedPerSecond?.toFixed(1) ?? 'n/a'],
    ['of limit', (f) => (f.shareOfLimit === undefined ? 'n/a' : `${(Math.floor(f.shareOfLimit * 1000) / 10).toFixed(1)}%`)],
    ['max in 1 s', (f) => String(f.maxInOneSecond)],
    ['steady max', (f) => String(f.steadyMaxInOneSecond)],
    ['worker CPU ms/send', (f) => f.workerCpuMsPerSend.toFixed(2)],
    ['worker cores', (f) => f.workerCores.toFixed(2)],
    ['web CPU ms/enqueue', (f) => f.webCpuMsPerEnqueue.toFixed(2)],
    ['enqueue/s', (f) => String(f.enqueuePerSecond)],
    ['lost', (f) => String(f.lost)],
    ['doubled', (f) => String(f.doubled)],
  ];
  log(columns.map(([title]) => title.padStart(Math.max(8, title.length))).join(' '));
  for (const figures of results) log(columns.map(([title, cell]) => cell(figures).padStart(Math.max(8, title.length))).join(' '));
}

async function main(): Promise<number> {
  if (!fs.existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` (npm run bench:sends does)');
  const calibrationMs = cpuCalibrationMs();
  const loadBefore = os.loadavg()[0]!;
  const results: RateFigures[] = [];
  for (const rate of RATES) results.push(await benchRate(rate));
  const loadAfter = os.loadavg()[0]!;
  const calibrationAfterMs = cpuCalibrationMs();

  const cpu = os.cpus();
  const machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`;
  log();
  log(`Queued template sends benchmark, ${new Date().toISOString()}`);
  log(`machine: ${machine}; Node ${process.version}; CPU calibration ${calibrationMs} ms before, ${calibrationAfterMs} ms after; load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`);
  log(`${SENDS} sends per limit, queued from ${ENQUEUE_CONNECTIONS} connections before one worker starts; fake Cloud API answering after ${UPSTREAM_DELAY_MS} ms; all on 127.0.0.1`);
  log();
  printTable(results);
  log();
  for (const figures of results) {
    const share = figures.shareOfLimit;
    const verdict = share === undefined ? 'too few sends to tell' : share >= TARGET_SHARE ? 'met' : 'MISSED';
    log(`limit ${figures.rateLimit}/s: at least ${TARGET_SHARE * 100}% of it sustained: ${verdict}; worker peak RSS ${figures.workerPeakRssMb} MB; ${figures.calls} calls for ${figures.accepted} sends accepted`);
  }
  if (speedChanged(calibrationMs, calibrationAfterMs)) log(SPEED_CHANGED_WARNING);

  const resultsDir = path.join(__dirname, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, 'sends-latest.json');
  const run = { date: new Date().toISOString(), machine, node: process.version, cpuCalibrationMs: [calibrationMs, calibrationAfterMs], loadBefore, loadAfter, upstreamDelayMs: UPSTREAM_DELAY_MS };
  fs.writeFileSync(file, `${JSON.stringify({ ...run, results }, null, 2)}\n`);
  log(`written to ${path.relative(process.cwd(), file)}`);

  const broken = results.filter((figures) => figures.accepted < figures.sends || figures.lost > 0 || figures.doubled > 0);
  for (const figures of broken) log(`limit ${figures.rateLimit}/s: ${figures.sends - figures.accepted} enqueues failed, ${figures.lost} sends lost, ${figures.doubled} doubled`);
  return broken.length > 0 ? 1 : 0;
}

runBenchmark(main, WATCHDOG_MS);
