// npm run bench:whatsapp: the WhatsApp template proxy against the same load straight at its upstream.
//
// Starts a fake Cloud API answering after 50 ms (bench/fake-partner.ts, a process of its own) and the
// built companion (`serve --role web`, on a database of its own that is dropped afterwards), then puts
// the same load, 100 connections for a fixed time, straight at the fake, through the least a proxy can
// do (bench/bare-proxy.ts, the floor), and through POST /api/v1/whatsapp/templates, and prints the
// throughputs, their ratios and the latency each proxy adds. Everything runs on 127.0.0.1, and the run
// stops by itself.
//
// Environment: BENCH_DURATION_S (10), BENCH_CONNECTIONS (100), BENCH_UPSTREAM_DELAY_MS (50),
// BENCH_DATABASE_URL (a server; the database name is made up), BENCH_REDIS_URL (redis://127.0.0.1:6379),
// BENCH_NODE_OPTIONS (given to the companion, e.g. "--cpu-prof --cpu-prof-dir=bench/results").
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropDatabase } from '../src/db/migrate';
import {
  BENCH_TEMPLATE_REQUEST,
  BENCH_WHATSAPP,
  SPEED_CHANGED_WARNING,
  benchDatabaseUrl,
  cpuCalibrationMs,
  load,
  peakRssMb,
  prepareBenchDatabase,
  removeQueues,
  runBenchmark,
  speedChanged,
  startChild,
  startFakePartner,
  startCompanion,
  withCpuPerRequest,
  type Child,
  type LoadFigures,
} from './lib';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);
const UPSTREAM_DELAY_MS = Number(process.env.BENCH_UPSTREAM_DELAY_MS ?? 50);
const WARMUP_S = 3;
/** Whatever happens, the run ends by then. */
const WATCHDOG_MS = (6 * DURATION_S + 180) * 1000;
const MAIN = path.join(__dirname, '..', 'dist', 'main.js');

const { to: TO, template: TEMPLATE } = BENCH_TEMPLATE_REQUEST;

const log = (line = '') => process.stdout.write(`${line}\n`);
const children: Child[] = [];

function loadAt(url: string, headers: Record<string, string>, body: object, seconds: number): Promise<LoadFigures> {
  return load({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    connections: CONNECTIONS,
    duration: seconds,
    timeout: 10,
  });
}

/** Rounded down: a ratio just under 90% must not print as 90.0%. */
const percentRoundedDown = (ratio: number) => (Math.floor(ratio * 1000) / 10).toFixed(1);

function row(label: string, figures: LoadFigures): string {
  const cells = [figures.requestsPerSecond, figures.p50Ms.toFixed(2), figures.p99Ms.toFixed(2), figures.errors, figures.non2xx];
  return label.padEnd(16) + cells.map((cell, index) => String(cell).padStart(index === 0 ? 8 : 9)).join('');
}

async function main(): Promise<number> {
  if (!fs.existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` (npm run bench:whatsapp does)');
  const calibrationMs = cpuCalibrationMs();
  const databaseUrl = benchDatabaseUrl('whatsapp');
  const queuePrefix = `bench-whatsapp-${randomBytes(4).toString('hex')}`;
  try {
    const token = await prepareBenchDatabase(databaseUrl);
    const fake = await startFakePartner(UPSTREAM_DELAY_MS);
    children.push(fake);
    const upstreamUrl = `http://127.0.0.1:${fake.port}`;
    const companion = await startCompanion(MAIN, { role: 'web', databaseUrl, whatsappUrl: upstreamUrl, queuePrefix });
    children.push(companion);

    const messagesUrl = `${upstreamUrl}/v26.0/${BENCH_WHATSAPP.phoneNumberId}/messages`;
    const bareProxy = await startChild(['--import', 'tsx', path.join(__dirname, 'bare-proxy.ts')], {
      PORT: '0',
      UPSTREAM_URL: messagesUrl,
      UPSTREAM_AUTHORIZATION: `Bearer ${BENCH_WHATSAPP.token}`,
    });
    children.push(bareProxy);

    const direct = {
      url: messagesUrl,
      headers: { authorization: `Bearer ${BENCH_WHATSAPP.token}` },
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
    const proxied = {
      url: `http://127.0.0.1:${companion.port}/api/v1/whatsapp/templates`,
      headers: { authorization: `Token ${token}` },
      body: { to: TO, template: TEMPLATE },
    };

    // Other work on the machine takes CPU from the proxy: the figures say how busy it was.
    const loadBefore = os.loadavg()[0]!;
    const bare = { url: `http://127.0.0.1:${bareProxy.port}/`, headers: {}, body: proxied.body };
    const measure = (target: { url: string; headers: Record<string, string>; body: object }, server: Child) =>
      withCpuPerRequest(server, () => loadAt(target.url, target.headers, target.body, DURATION_S));

    log(`warming up (${WARMUP_S} s each)…`);
    await loadAt(direct.url, direct.headers, direct.body, WARMUP_S);
    await loadAt(bare.url, bare.headers, bare.body, WARMUP_S);
    await loadAt(proxied.url, proxied.headers, proxied.body, WARMUP_S);
    log(`measuring (${DURATION_S} s each)…`);
    const straight = await loadAt(direct.url, direct.headers, direct.body, DURATION_S);
    const floor = await measure(bare, bareProxy);
    const through = await measure(proxied, companion);
    const loadAfter = os.loadavg()[0]!;
    const calibrationAfterMs = cpuCalibrationMs();

    const ratio = through.requestsPerSecond / straight.requestsPerSecond;
    const addedP50Ms = through.p50Ms - straight.p50Ms;
    const addedP99Ms = through.p99Ms - straight.p99Ms;
    const cpu = os.cpus();
    const machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`;
    log();
    log(`WhatsApp template proxy benchmark, ${new Date().toISOString()}`);
    log(`machine: ${machine}; Node ${process.version}; CPU calibration ${calibrationMs} ms before, ${calibrationAfterMs} ms after; load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`);
    log(`load: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s per run; fake Cloud API answering after ${UPSTREAM_DELAY_MS} ms; all on 127.0.0.1`);
    log();
    log(`${'target'.padEnd(16)}${'req/s'.padStart(8)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(9)}${'non-2xx'.padStart(9)}`);
    log(row('direct', straight));
    log(row('bare proxy', floor));
    log(row('through proxy', through));
    log();
    log(`throughput ratio: ${percentRoundedDown(ratio)}% of direct (target >= 90%): ${ratio >= 0.9 ? 'met' : 'MISSED'}`);
    log(`latency added at p50: ${addedP50Ms.toFixed(2)} ms (target <= 2 ms): ${addedP50Ms <= 2 ? 'met' : 'MISSED'}`);
    log(`latency added at p99: ${addedP99Ms.toFixed(2)} ms`);
    log(`companion: ${through.cpuMsPerRequest.toFixed(2)} ms of CPU per proxied request, peak RSS ${peakRssMb(companion.process.pid!)} MB`);
    log(
      `bare proxy (the floor): ${percentRoundedDown(floor.requestsPerSecond / straight.requestsPerSecond)}% of direct, ` +
        `${(floor.p50Ms - straight.p50Ms).toFixed(2)} ms added at p50, ${floor.cpuMsPerRequest.toFixed(2)} ms of CPU per request`,
    );
    if (speedChanged(calibrationMs, calibrationAfterMs)) log(SPEED_CHANGED_WARNING);

    const resultsDir = path.join(__dirname, 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, 'whatsapp-latest.json');
    const results = { date: new Date().toISOString(), machine, cpuCalibrationMs: [calibrationMs, calibrationAfterMs], node: process.version, loadBefore, loadAfter, connections: CONNECTIONS, durationS: DURATION_S };
    fs.writeFileSync(file, `${JSON.stringify({ ...results, upstreamDelayMs: UPSTREAM_DELAY_MS, direct: straight, bareProxy: floor, proxy: through, ratio, addedP50Ms, addedP99Ms, cpuPerRequestMs: through.cpuMsPerRequest }, null, 2)}\n`);
    log(`written to ${path.relative(process.cwd(), file)}`);
    const failed = [straight, floor, through].reduce((sum, figures) => sum + figures.errors + figures.non2xx, 0);
    if (failed > 0) log(`${failed} requests failed: the figures above are not comparable`);
    return failed > 0 ? 1 : 0;
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await dropDatabase(databaseUrl).catch((error: unknown) => log(`could not drop the bench database: ${String(error)}`));
    await removeQueues([queuePrefix]);
  }
}

runBenchmark(main, WATCHDOG_MS);
