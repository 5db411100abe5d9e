// npm run bench: ingestion (the opt-out webhook beside a naive durable baseline, bench/naive-ingest.ts),
// the worker's drain rate against a fake OpenHIM (instant, then 50 ms), and peak memory. Prints a
// table with the targets and writes JSON. Everything runs on this machine: PostgreSQL, Redis, the
// companion's processes, the baseline, the fake partner and the load generator.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createDatabase, type Database } from '../src/db/client';
import { dropDatabase } from '../src/db/migrate';
import { OPTOUT_JOBS, jobIdFor } from '../src/optouts/queue';
import {
  BENCH_REDIS_URL,
  SPEED_CHANGED_WARNING,
  cpuCalibrationMs,
  cpuSeconds,
  load,
  optoutWebhookBody,
  paced,
  peakRssMb,
  prepareBenchDatabase,
  productionEnv,
  speedChanged,
  startChild,
  startFakePartner,
  until,
  withCpuPerRequest,
  type Child,
  type LoadFigures,
} from './lib';

const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/companion_bench';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const WARMUP_REQUESTS = 3000;
const CONNECTIONS = 50;
/** The paced run's webhooks a second, across the CONNECTIONS. */
const PACED_RATE = 400;
/** Which parts run: "ingestion,worker" (both) unless BENCH_PARTS names one. */
const PARTS = (process.env.BENCH_PARTS ?? 'ingestion,worker').split(',');
const DRAIN_OPTOUTS = Number(process.env.BENCH_OPTOUTS ?? 20000);
/**
 * The 50 ms drain runs once per concurrency: the worker keeps up with what a low concurrency allows
 * (the partner's latency limits it), and past some concurrency the machine's CPU does instead.
 * 10 is WORKER_CONCURRENCY's default. The instant drain uses the highest.
 */
const WORKER_CONCURRENCIES = (process.env.BENCH_WORKER_CONCURRENCY ?? '10,50,100').split(',').map(Number);
const INSTANT_CONCURRENCY = Math.max(...WORKER_CONCURRENCIES);
const MAIN = path.join(__dirname, '..', 'dist', 'main.js');

const log = (line: string) => process.stdout.write(`${line}\n`);

function companionEnv(prefix: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...productionEnv(), LOG_LEVEL: 'info', PORT: '0', DATABASE_URL, REDIS_URL: BENCH_REDIS_URL, QUEUE_PREFIX: prefix, ...extra };
}

/** One of the two servers the ingestion benchmark loads, and what it has been measured doing. */
interface Target {
  server: Child;
  prefix: string;
  saturated?: LoadFigures & { cpuMsPerRequest: number };
  paced?: LoadFigures;
  accepted202: number;
}

/**
 * Opt-out webhooks, each with a valid token and a new contact, from CONNECTIONS connections: `amount`
 * of them, as fast as answers come, or evenly spaced at `rate` a second. A fixed number, so that every
 * request sent is answered and the 202s can be matched to rows and jobs.
 */
async function ingestionLoad(target: Target, token: string, amount: number, rate?: number): Promise<LoadFigures> {
  const headers = { 'content-type': 'application/json', authorization: `Token ${token}` };
  const route = '/api/v1/optouts';
  const figures = rate
    ? await paced({ port: target.server.port, path: route, headers, body: optoutWebhookBody, rate, amount, connections: CONNECTIONS })
    : await load({
        url: `http://127.0.0.1:${target.server.port}`,
        connections: CONNECTIONS,
        amount,
        requests: [{ method: 'POST', path: route, headers, setupRequest: (request) => ({ ...request, body: optoutWebhookBody() }) }],
      });
  target.accepted202 += figures.statusCounts['202'] ?? 0;
  return figures;
}

async function main() {
  await dropDatabase(DATABASE_URL);
  const token = await prepareBenchDatabase(DATABASE_URL);
  const db = createDatabase({ url: DATABASE_URL, poolSize: 4 });
  const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: null });
  const calibrationBefore = cpuCalibrationMs();
  const loadBefore = os.loadavg()[0]!;
  const ingestion = PARTS.includes('ingestion') ? await benchIngestion(db, redis, token) : undefined;
  const worker = PARTS.includes('worker') ? await benchWorker(db, redis) : undefined;
  const machine = {
    cpuCalibrationMs: [calibrationBefore, cpuCalibrationMs()] as const,
    loadAverage: [loadBefore, os.loadavg()[0]!] as const,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
  };
  const results: Results = { ingestion, worker, machine };

  printTable(results);
  const out = path.join(__dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(`\nwritten to ${path.relative(process.cwd(), path.join(out, 'latest.json'))}`);
  await db.$disconnect();
  redis.disconnect();
}

/**
 * 1. Ingestion: the companion's web process and the naive durable baseline (bench/naive-ingest.ts) run
 * side by side on one database and Redis and are loaded in turn: a warm-up of WARMUP_REQUESTS each,
 * then about SECONDS' worth as fast as they answer, then SECONDS at PACED_RATE a second.
 */
async function benchIngestion(db: Database, redis: Redis, token: string) {
  const prefix = (name: string) => `bench-ingest-${name}-${Date.now()}`;
  const companionPrefix = prefix('companion');
  const naivePrefix = prefix('naive');
  const companion: Target = { server: await startChild([MAIN, 'serve', '--role', 'web'], companionEnv(companionPrefix)), prefix: companionPrefix, accepted202: 0 };
  const naive: Target = {
    server: await startChild(['--import', 'tsx', path.join(__dirname, 'naive-ingest.ts')], {
      NODE_ENV: 'production',
      PORT: '0',
      DATABASE_URL,
      REDIS_URL: BENCH_REDIS_URL,
      QUEUE_PREFIX: naivePrefix,
    }),
    prefix: naivePrefix,
    accepted202: 0,
  };
  const targets = [companion, naive];
  const warmupRates = new Map<Target, number>();
  for (const target of targets) warmupRates.set(target, (await ingestionLoad(target, token, WARMUP_REQUESTS)).requestsPerSecond);
  for (const target of targets) {
    const amount = Math.max(1000, Math.round(warmupRates.get(target)! * SECONDS));
    target.saturated = await withCpuPerRequest(target.server, () => ingestionLoad(target, token, amount));
  }
  for (const target of targets) target.paced = await ingestionLoad(target, token, PACED_RATE * SECONDS, PACED_RATE);

  const peakRss = targets.map((target) => peakRssMb(target.server.process.pid!));
  const jobs: number[] = [];
  for (const target of targets) {
    await target.server.stop();
    const queue = new Queue(OPTOUT_JOBS.queueName, { connection: redis, prefix: target.prefix });
    jobs.push(await queue.getJobCountByTypes('waiting', 'delayed', 'active', 'prioritized'));
    await queue.obliterate({ force: true });
    await queue.close();
  }
  const side = (target: Target, index: number) => ({
    saturated: target.saturated!,
    paced: target.paced!,
    accepted202: target.accepted202,
    jobs: jobs[index]!,
    peakRssMb: peakRss[index]!,
  });
  return { connections: CONNECTIONS, seconds: SECONDS, pacedRate: PACED_RATE, companion: side(companion, 0), naive: side(naive, 1), rows: await db.optout.count() };
}

/** 2. Worker: drain queued opt-outs against a fake OpenHIM, at once and at 50 ms per request. */
async function benchWorker(db: Database, redis: Redis) {
  const drains: Drain[] = [];
  let workerRssMb = 0;
  const runs = [{ delayMs: 0, concurrency: INSTANT_CONCURRENCY }, ...WORKER_CONCURRENCIES.map((concurrency) => ({ delayMs: 50, concurrency }))];
  for (const { delayMs, concurrency } of runs) {
    log(`draining ${DRAIN_OPTOUTS} opt-outs, fake OpenHIM answering after ${delayMs} ms, concurrency ${concurrency}…`);
    const partner = await startFakePartner(delayMs);
    const partnerUrl = `http://127.0.0.1:${partner.port}`;
    const prefix = `bench-drain-${delayMs}-${concurrency}-${Date.now()}`;
    await db.optout.deleteMany();
    const ids = Array.from({ length: DRAIN_OPTOUTS }, () => randomUUID());
    for (let start = 0; start < ids.length; start += 2000) {
      await db.optout.createMany({
        data: ids.slice(start, start + 2000).map((id) => ({
          id,
          contactUuid: randomUUID(),
          contactUrn: 'whatsapp:27820001001',
          contactFields: { facility_code: '123456' },
          reasonCategory: 'job_change',
        })),
      });
    }
    const drainQueue = new Queue(OPTOUT_JOBS.queueName, { connection: redis, prefix });
    for (let start = 0; start < ids.length; start += 1000) {
      await drainQueue.addBulk(ids.slice(start, start + 1000).map((id) => ({ name: 'run', data: { id }, opts: { jobId: jobIdFor(id), attempts: 12, backoff: { type: 'row' } } })));
    }
    const worker = await startChild(
      [MAIN, 'serve', '--role', 'worker'],
      companionEnv(prefix, {
        RAPIDPRO_URL: partnerUrl,
        RAPIDPRO_TOKEN: 'bench',
        OPENHIM_URL: partnerUrl,
        OPENHIM_USERNAME: 'bench',
        OPENHIM_PASSWORD: 'bench',
        WORKER_CONCURRENCY: String(concurrency),
        DATABASE_POOL_SIZE: '20',
      }),
    );
    const started = Date.now();
    const cpuBefore = cpuSeconds(worker.process.pid!);
    await until(async () => (await db.optout.count({ where: { status: 'queued' } })) === 0, 15 * 60 * 1000, 200);
    const seconds = (Date.now() - started) / 1000;
    const cpuMsPerSubmission = ((cpuSeconds(worker.process.pid!) - cpuBefore) * 1000) / DRAIN_OPTOUTS;
    workerRssMb = Math.max(workerRssMb, peakRssMb(worker.process.pid!));
    await worker.stop();
    const submitted = await db.optout.count({ where: { status: 'submitted' } });
    const allowed = delayMs === 0 ? undefined : concurrency / (delayMs / 1000);
    drains.push({
      delayMs,
      concurrency,
      optouts: DRAIN_OPTOUTS,
      submitted,
      seconds: Number(seconds.toFixed(2)),
      submissionsPerSecond: Math.round(submitted / seconds),
      cpuMsPerSubmission: Number(cpuMsPerSubmission.toFixed(2)),
      ...(allowed ? { concurrencyAllows: allowed, shareOfAllowed: Number((submitted / seconds / allowed).toFixed(3)) } : {}),
    });
    await drainQueue.obliterate({ force: true });
    await drainQueue.close();
    await partner.stop();
  }
  return { drains, workerPeakRssMb: workerRssMb };
}

interface Results {
  ingestion?: Awaited<ReturnType<typeof benchIngestion>>;
  worker?: Awaited<ReturnType<typeof benchWorker>>;
  /** Calibrations and one-minute load averages: before and after the measurements. */
  machine: { cpuCalibrationMs: readonly [number, number]; loadAverage: readonly [number, number]; cpus: number; cpuModel?: string; memoryGb: number; node: string; date: string };
}

interface Drain {
  delayMs: number;
  concurrency: number;
  optouts: number;
  submitted: number;
  seconds: number;
  submissionsPerSecond: number;
  /** The worker process's CPU time per opt-out, its own share of the machine. */
  cpuMsPerSubmission: number;
  concurrencyAllows?: number;
  shareOfAllowed?: number;
}

function printTable(results: Results) {
  const { ingestion, worker, machine } = results;
  if (ingestion) {
    const { companion, naive } = ingestion;
    const cell = (value: string | number, width = 10) => String(value).padStart(width);
    const row = (measure: string, ours: number, theirs: number, target = '') =>
      log(`${measure.padEnd(28)} ${cell(ours)} ${cell(theirs)} ${cell((ours / theirs).toFixed(2), 7)}  ${target}`);
    const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
    const [saturated, paced] = [companion.saturated, companion.paced];
    log(`\nIngestion, POST /api/v1/optouts from ${CONNECTIONS} connections, about ${SECONDS} s each`);
    log(`${''.padEnd(28)} ${cell('companion')} ${cell('naive')} ${cell('ratio', 7)}  target`);
    row('as fast as answered: req/s', saturated.requestsPerSecond, naive.saturated.requestsPerSecond, `>= 0.9x: ${met(saturated.requestsPerSecond >= 0.9 * naive.saturated.requestsPerSecond)}`);
    row('  p50 ms', saturated.p50Ms, naive.saturated.p50Ms);
    row('  p99 ms', saturated.p99Ms, naive.saturated.p99Ms);
    row('  CPU ms per request', saturated.cpuMsPerRequest, naive.saturated.cpuMsPerRequest);
    const kept = (figures: LoadFigures) => figures.requestsPerSecond >= 0.95 * PACED_RATE;
    row(`paced at ${PACED_RATE}/s: req/s`, paced.requestsPerSecond, naive.paced.requestsPerSecond, kept(paced) && kept(naive.paced) ? 'both kept pace' : 'pace NOT kept: latencies not comparable');
    row('  p50 ms', paced.p50Ms, naive.paced.p50Ms, `within 1 ms: ${met(paced.p50Ms <= naive.paced.p50Ms + 1)}`);
    row('  p99 ms', paced.p99Ms, naive.paced.p99Ms, `no worse: ${met(paced.p99Ms <= naive.paced.p99Ms)}`);
    row('peak RSS MB', companion.peakRssMb, naive.peakRssMb);
    const failed = (side: typeof companion) => side.saturated.errors + side.saturated.non2xx + side.paced.errors + side.paced.non2xx;
    log(`failed requests: companion ${failed(companion)}, naive ${failed(naive)}; 202s ${companion.accepted202} + ${naive.accepted202}, jobs ${companion.jobs} + ${naive.jobs}, rows ${ingestion.rows}`);
  }
  if (worker) {
    log(`\nWorker drains of ${DRAIN_OPTOUTS} opt-outs`);
    log(`${'fake OpenHIM'.padEnd(13)} ${'concurrency'.padStart(11)} ${'subm/s'.padStart(7)} ${'seconds'.padStart(8)} ${'CPU ms/subm'.padStart(11)} ${'of allowed'.padStart(10)}`);
    for (const drain of worker.drains) {
      const share = drain.shareOfAllowed === undefined ? '' : `${Math.round(drain.shareOfAllowed * 100)}%`;
      log(`${`${drain.delayMs} ms`.padEnd(13)} ${String(drain.concurrency).padStart(11)} ${String(drain.submissionsPerSecond).padStart(7)} ${String(drain.seconds).padStart(8)} ${String(drain.cpuMsPerSubmission).padStart(11)} ${share.padStart(10)}`);
    }
    const instant = worker.drains.find((drain) => drain.delayMs === 0);
    if (instant) log(`target: at least 2,000 submissions/s against the instant partner: ${instant.submissionsPerSecond >= 2000 ? 'met' : 'MISSED'}`);
    log(`worker peak RSS ${worker.workerPeakRssMb} MB`);
  }
  const [before, after] = machine.cpuCalibrationMs;
  const loadAverage = machine.loadAverage.map((value) => value.toFixed(1)).join(' and ');
  log(`\n${machine.date}: ${machine.cpuModel ?? 'unknown CPU'}, ${machine.cpus} cores, Node ${machine.node}, CPU calibration ${before} ms before, ${after} ms after; load average ${loadAverage}`);
  // Seen here: a virtual machine whose speed, or clock, changed in the middle of a run, and a drain
  // that beat what its concurrency allows.
  const impossible = worker?.drains.some((drain) => (drain.shareOfAllowed ?? 0) > 1) ?? false;
  if (speedChanged(before, after) || impossible) log(SPEED_CHANGED_WARNING);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
