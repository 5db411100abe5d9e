// npm run bench: ingestion (the opt-out webhook against bare Express), the worker's drain rate
// against a fake OpenHIM (instant, then 50 ms), and peak memory. Prints a table and writes JSON.
// Everything runs on this machine: PostgreSQL, Redis, the companion's processes, the fake partner.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createDatabase, type Database } from '../src/db/client';
import { dropDatabase } from '../src/db/migrate';
import { OPTOUT_QUEUE, jobIdFor } from '../src/optouts/queue';
import {
  BENCH_REDIS_URL,
  SPEED_CHANGED_WARNING,
  cpuCalibrationMs,
  cpuSeconds,
  load,
  optoutWebhookBody,
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

function companionEnv(role: 'web' | 'worker', prefix: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...productionEnv(role), LOG_LEVEL: 'info', PORT: '0', DATABASE_URL, REDIS_URL: BENCH_REDIS_URL, QUEUE_PREFIX: prefix, ...extra };
}

/**
 * A warm-up of WARMUP_REQUESTS measures the rate; the measured run then sends about SECONDS' worth.
 * Both send a fixed number of requests, so that every request sent is answered and the 202s can be
 * matched to rows and jobs (a run cut off by time leaves requests committed but never answered).
 */
async function ingestionRun(server: Child, token: string | undefined) {
  const warmup = await ingestionLoad(server.port, token, WARMUP_REQUESTS);
  const measured = await withCpuPerRequest(server, () => ingestionLoad(server.port, token, Math.max(1000, Math.round(warmup.requestsPerSecond * SECONDS))));
  return { warmup, measured };
}

async function ingestionLoad(port: number, token: string | undefined, amount: number) {
  return load({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    amount,
    requests: [
      {
        method: 'POST',
        path: '/api/v1/optouts',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Token ${token}` } : {}) },
        setupRequest: (request) => ({ ...request, body: optoutWebhookBody() }),
      },
    ],
  });
}

async function main() {
  await dropDatabase(DATABASE_URL);
  const token = await prepareBenchDatabase(DATABASE_URL);
  const db = createDatabase({ url: DATABASE_URL, poolSize: 4 });
  const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: null });
  const calibrationBefore = cpuCalibrationMs();
  const ingestion = PARTS.includes('ingestion') ? await benchIngestion(db, redis, token) : undefined;
  const worker = PARTS.includes('worker') ? await benchWorker(db, redis) : undefined;
  const machine = { cpuCalibrationMs: [calibrationBefore, cpuCalibrationMs()] as const, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() };
  const results: Results = { ingestion, worker, machine };

  printTable(results);
  const out = path.join(__dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(`\nwritten to ${path.relative(process.cwd(), path.join(out, 'latest.json'))}`);
  await db.$disconnect();
  redis.disconnect();
}

/** 1. Ingestion: the companion's webhook, then bare Express, the same load. */
async function benchIngestion(db: Database, redis: Redis, token: string) {
  const ingestPrefix = `bench-ingest-${Date.now()}`;
  const web = await startChild([MAIN, 'serve', '--role', 'web'], companionEnv('web', ingestPrefix));
  const { warmup, measured: ingestion } = await ingestionRun(web, token);
  const webRssMb = peakRssMb(web.process.pid!);
  await web.stop();
  const accepted = (warmup.statusCounts['202'] ?? 0) + (ingestion.statusCounts['202'] ?? 0);
  const rows = await db.optout.count();
  const queue = new Queue(OPTOUT_QUEUE, { connection: redis, prefix: ingestPrefix });
  const jobs = await queue.getJobCountByTypes('waiting', 'delayed', 'active', 'prioritized');
  await queue.obliterate({ force: true });
  await queue.close();

  const bare = await startChild(['--import', 'tsx', path.join(__dirname, 'bare-server.ts')], { PORT: '0' });
  const { measured: baseline } = await ingestionRun(bare, undefined);
  await bare.stop();
  return {
    connections: CONNECTIONS,
    seconds: SECONDS,
    companionSeconds: ingestion.seconds,
    companion: ingestion,
    bareExpress: baseline,
    ratio: Number((ingestion.requestsPerSecond / baseline.requestsPerSecond).toFixed(3)),
    accepted202: accepted,
    rows,
    jobs,
    webPeakRssMb: webRssMb,
  };
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
    const drainQueue = new Queue(OPTOUT_QUEUE, { connection: redis, prefix });
    for (let start = 0; start < ids.length; start += 1000) {
      await drainQueue.addBulk(ids.slice(start, start + 1000).map((id) => ({ name: 'submit', data: { optoutId: id }, opts: { jobId: jobIdFor(id), attempts: 12, backoff: { type: 'optout' } } })));
    }
    const worker = await startChild(
      [MAIN, 'serve', '--role', 'worker'],
      companionEnv('worker', prefix, {
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
  /** Before and after the measurements. */
  machine: { cpuCalibrationMs: readonly [number, number]; cpus: number; cpuModel?: string; memoryGb: number; node: string; date: string };
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
    const row = (name: string, figures: LoadFigures & { cpuMsPerRequest: number }) =>
      log(`${name.padEnd(22)} ${String(figures.requestsPerSecond).padStart(8)} ${String(figures.p50Ms).padStart(7)} ${String(figures.p99Ms).padStart(7)} ${String(figures.maxMs).padStart(7)} ${String(figures.errors + figures.non2xx).padStart(7)} ${String(figures.cpuMsPerRequest).padStart(12)}`);
    log(`\nIngestion, ${CONNECTIONS} connections, ${SECONDS} s`);
    log(`${'target'.padEnd(22)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'max ms'.padStart(7)} ${'errors'.padStart(7)} ${'CPU ms/req'.padStart(12)}`);
    row('companion webhook', ingestion.companion);
    row('bare Express', ingestion.bareExpress);
    log(`ratio ${ingestion.ratio}; 202s ${ingestion.accepted202}, rows ${ingestion.rows}, jobs ${ingestion.jobs}; web peak RSS ${ingestion.webPeakRssMb} MB`);
  }
  if (worker) {
    log(`\nWorker drains of ${DRAIN_OPTOUTS} opt-outs`);
    log(`${'fake OpenHIM'.padEnd(13)} ${'concurrency'.padStart(11)} ${'subm/s'.padStart(7)} ${'seconds'.padStart(8)} ${'CPU ms/subm'.padStart(11)} ${'of allowed'.padStart(10)}`);
    for (const drain of worker.drains) {
      const share = drain.shareOfAllowed === undefined ? '' : `${Math.round(drain.shareOfAllowed * 100)}%`;
      log(`${`${drain.delayMs} ms`.padEnd(13)} ${String(drain.concurrency).padStart(11)} ${String(drain.submissionsPerSecond).padStart(7)} ${String(drain.seconds).padStart(8)} ${String(drain.cpuMsPerSubmission).padStart(11)} ${share.padStart(10)}`);
    }
    log(`worker peak RSS ${worker.workerPeakRssMb} MB`);
  }
  const [before, after] = machine.cpuCalibrationMs;
  log(`\n${machine.date}: ${machine.cpuModel ?? 'unknown CPU'}, ${machine.cpus} cores, Node ${machine.node}, CPU calibration ${before} ms before, ${after} ms after`);
  // Seen here: a virtual machine whose speed, or clock, changed in the middle of a run, and a drain
  // that beat what its concurrency allows.
  const impossible = worker?.drains.some((drain) => (drain.shareOfAllowed ?? 0) > 1) ?? false;
  if (speedChanged(before, after) || impossible) log(SPEED_CHANGED_WARNING);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
