// npm run bench:ab -- <build A> <build B>: which of two builds (or two sets of Node flags) of the
// companion answers a webhook with less CPU. This machine changes speed from minute to minute, so two
// benchmark runs an hour apart cannot tell a 10% change; this runs both side by side (each `serve
// --role web` on one database, in front of one fake Cloud API answering after 50 ms) and loads them in
// turn, A, B, B, A, A, B…, printing each round's figures and the means of each: CPU, garbage
// collection and scavenges per request (the last depends on the bytes a request allocates, not on the
// machine's speed).
//
// A build is a folder holding main.js beside package.json (the build reads its version from it), e.g.
// a copy of dist/ made before a change (git ignores dist-*/):
//   cp -r dist dist-before && (change, npm run build) && npm run bench:ab -- dist-before dist
// To compare Node flags, give one build twice and the flags of each:
//   BENCH_AB_NODE_OPTIONS_B=--max-semi-space-size=16 npm run bench:ab -- dist dist
// Rounds of two identical builds differ too (docs/PERFORMANCE.md): trust a difference that holds in
// most rounds. Environment: BENCH_AB_ROUTE (whatsapp: POST /api/v1/whatsapp/templates, 100 connections;
// optouts: POST /api/v1/optouts with a new contact each time, 50 connections, as `npm run bench`),
// BENCH_AB_ROUNDS (6; even, so that each goes first as often), BENCH_DURATION_S (8), BENCH_CONNECTIONS,
// BENCH_AB_NODE_OPTIONS_A and _B (Node flags for each), BENCH_DATABASE_URL
// (a server; the database name is made up), BENCH_REDIS_URL.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { dropDatabase } from '../src/db/migrate';
import {
  benchDatabaseUrl,
  cpuCalibrationMs,
  gcTotals,
  loadWebhook,
  prepareBenchDatabase,
  removeQueues,
  startFakePartner,
  startCompanion,
  webhookRouteNamed,
  withCpuPerRequest,
  type Child,
} from './lib';

const ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 6);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);

const log = (line = '') => process.stdout.write(`${line}\n`);
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

async function main(builds: string[]): Promise<number> {
  if (builds.length !== 2) throw new Error('usage: npm run bench:ab -- <build A> <build B> (folders holding main.js)');
  const routeName = webhookRouteNamed(process.env.BENCH_AB_ROUTE, 'BENCH_AB_ROUTE');
  const connections = process.env.BENCH_CONNECTIONS ? Number(process.env.BENCH_CONNECTIONS) : undefined;
  const nodeOptions = [process.env.BENCH_AB_NODE_OPTIONS_A, process.env.BENCH_AB_NODE_OPTIONS_B];
  const mains = builds.map((build) => path.resolve(build, 'main.js'));
  for (const main of mains) if (!fs.existsSync(main)) throw new Error(`${main} is missing`);
  const databaseUrl = benchDatabaseUrl('ab');
  const children: Child[] = [];
  const queuePrefixes = builds.map((_build, index) => `bench-ab-${'ab'[index]}-${randomBytes(4).toString('hex')}`);
  try {
    const token = await prepareBenchDatabase(databaseUrl);
    const fake = await startFakePartner(50);
    children.push(fake);
    const companions: Child[] = [];
    for (const [index, main] of mains.entries()) {
      const companion = await startCompanion(main, {
        role: 'web',
        databaseUrl,
        whatsappUrl: `http://127.0.0.1:${fake.port}`,
        queuePrefix: queuePrefixes[index]!,
        nodeOptions: nodeOptions[index],
      });
      children.push(companion);
      companions.push(companion);
    }
    const run = (companion: Child, seconds: number) => withCpuPerRequest(companion, () => loadWebhook(companion.port, routeName, token, seconds, connections));
    for (const companion of companions) await run(companion, 3);
    const cpu: number[][] = [[], []];
    const gcMs: number[][] = [[], []];
    const scavenges: number[][] = [[], []];
    let failed = 0;
    for (let round = 1; round <= ROUNDS; round += 1) {
      // A then B, then B then A: whichever runs second in a round is measured faster, so each goes
      // first in half the rounds.
      const order = round % 2 === 1 ? [0, 1] : [1, 0];
      for (const index of order) {
        const companion = companions[index]!;
        const calibrationMs = cpuCalibrationMs();
        const gcBefore = await gcTotals(companion.port);
        const figures = await run(companion, DURATION_S);
        const gcAfter = await gcTotals(companion.port);
        const perThousand = (value: number) => (1000 * value) / figures.requests;
        cpu[index]!.push(figures.cpuMsPerRequest);
        scavenges[index]!.push(perThousand(gcAfter.scavenges - gcBefore.scavenges));
        gcMs[index]!.push(perThousand(gcAfter.seconds - gcBefore.seconds));
        failed += figures.errors + figures.non2xx;
        log(
          `round ${round} ${'AB'[index]}: calibration ${calibrationMs} ms, ${figures.requestsPerSecond} req/s, p50 ${figures.p50Ms} ms, ` +
            `p99 ${figures.p99Ms} ms, ${figures.cpuMsPerRequest} ms of CPU per request, of which GC ${gcMs[index]!.at(-1)!.toFixed(3)} ms; ` +
            `${scavenges[index]!.at(-1)!.toFixed(1)} scavenges per 1,000 requests`,
        );
      }
    }
    const named = (index: number) => [builds[index], nodeOptions[index]].filter(Boolean).join(' ');
    const compare = (what: string, [a, b]: number[][], digits: number) => {
      const [meanA, meanB] = [mean(a!), mean(b!)];
      log(`mean ${what}: A ${meanA.toFixed(digits)} (${named(0)}), B ${meanB.toFixed(digits)} (${named(1)}): B ${meanB <= meanA ? 'less' : 'more'} by ${Math.abs(100 * (1 - meanB / meanA)).toFixed(1)}%`);
    };
    compare('ms of CPU per request', cpu, 3);
    compare('ms of GC per request', gcMs, 3);
    // Scavenges follow the bytes allocated per request and the young generation's size, not the machine's speed.
    compare('scavenges per 1,000 requests', scavenges, 1);
    if (failed > 0) log(`${failed} requests failed: the figures are not comparable`);
    return failed > 0 ? 1 : 0;
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await dropDatabase(databaseUrl);
    // The opt-out webhooks' jobs, which no worker took.
    await removeQueues(queuePrefixes);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
