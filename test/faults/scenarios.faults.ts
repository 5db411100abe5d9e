import { setTimeout as sleep } from 'node:timers/promises';
import { optoutWebhook } from '../helpers/app';
import { ACCEPTED, Cluster, startInfrastructure, WORKER_CONCURRENCY, type Infrastructure, type UpstreamScript } from './cluster';

/**
 * Fault scenarios (`npm run test:faults`; CI runs them after `npm test`). Each sends a few hundred
 * opt-outs through the real web and worker processes while a fault strikes, waits for the queue to
 * drain, and checks the promise made by each 202: the opt-out reached OpenHIM, under its own eid,
 * once; none is left queued; no request was answered 500.
 *
 * Figures per scenario: sent; accepted (202); refused (503 while PostgreSQL was away, so never
 * promised); submitted (opt-outs OpenHIM took); duplicates (a submission sent while another for the
 * same eid was in flight, or after the companion had recorded it as submitted: must be 0); resent
 * (the same eid sent again because a killed worker never learnt the answer; OpenHIM recognises it by
 * eid); lost (accepted but never submitted: must be 0).
 */

const SENT = 300;
const SEND_OVER_MS = 10_000;
const DRAIN_WITHIN_MS = 120_000;

interface Outcome {
  status: number;
  body: { id?: string; error?: string } | undefined;
  error?: string;
}

interface Figures {
  scenario: string;
  sent: number;
  accepted: number;
  refused: number;
  submitted: number;
  duplicates: number;
  resent: number;
  lost: number;
  seconds: number;
}

const table: Figures[] = [];
let infrastructure: Infrastructure;

beforeAll(async () => {
  infrastructure = await startInfrastructure();
});
afterAll(async () => {
  await infrastructure?.close();
  printTable();
});

function printTable(): void {
  const columns: Array<keyof Figures> = ['scenario', 'sent', 'accepted', 'refused', 'submitted', 'duplicates', 'resent', 'lost', 'seconds'];
  const width = (column: keyof Figures) => Math.max(column.length, ...table.map((row) => String(row[column]).length));
  const line = (cells: (column: keyof Figures) => string) =>
    columns.map((column) => (column === 'scenario' ? cells(column).padEnd(width(column)) : cells(column).padStart(width(column)))).join('  ');
  process.stdout.write(`\nfault scenarios\n${line((column) => column)}\n${table.map((row) => line((column) => String(row[column]))).join('\n')}\n\n`);
}

/** Sends `count` opt-outs evenly over `overMs`, as RapidPro would during a busy campaign. */
async function sendOptouts(cluster: Cluster, count: number, overMs: number): Promise<Outcome[]> {
  const started = Date.now();
  return Promise.all(
    Array.from({ length: count }, async (_, index): Promise<Outcome> => {
      await sleep(started + (index * overMs) / count - Date.now());
      // Half carry the contact fields; the other half make the worker look the contact up in RapidPro.
      const body = index % 2 === 0 ? optoutWebhook({ urn: 'tel:+27820001001', fields: { facility_code: '123456' } }) : optoutWebhook();
      try {
        const response = await fetch(`${cluster.baseUrl}/api/v1/optouts`, {
          method: 'POST',
          headers: { authorization: `Token ${cluster.token}`, 'content-type': 'application/json', 'idempotency-key': body.run.uuid },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(15000),
        });
        return { status: response.status, body: (await response.json().catch(() => undefined)) as Outcome['body'] };
      } catch (error) {
        return { status: 0, body: undefined, error: String(error) };
      }
    }),
  );
}

interface Row {
  id: string;
  status: string;
  submitted_at: Date | null;
}

/** Waits until no opt-out is queued any more and every accepted one reached OpenHIM (or time is up). */
async function drain(cluster: Cluster, acceptedIds: string[]): Promise<Row[]> {
  const deadline = Date.now() + DRAIN_WITHIN_MS;
  for (;;) {
    const rows = await cluster.db.query<Row>('SELECT id, status, submitted_at FROM optouts').then(
      (result) => result.rows,
      () => undefined,
    );
    const delivered = new Set(cluster.deliveries().filter(({ request }) => isSuccess(request.answeredStatus)).map(({ eid }) => eid));
    if (rows && rows.every((row) => row.status !== 'queued') && acceptedIds.every((id) => delivered.has(id))) return rows;
    if (Date.now() > deadline) return rows ?? [];
    await sleep(250);
  }
}

const isSuccess = (status: number | undefined) => status !== undefined && status >= 200 && status < 300;

function count(cluster: Cluster, outcomes: Outcome[], rows: Row[]) {
  const acceptedIds = outcomes.filter((outcome) => outcome.status === 202).map((outcome) => outcome.body!.id!);
  const rowById = new Map(rows.map((row) => [row.id, row]));
  const byEid = new Map<string, ReturnType<Cluster['deliveries']>>();
  for (const delivery of cluster.deliveries()) byEid.set(delivery.eid, [...(byEid.get(delivery.eid) ?? []), delivery]);

  let duplicates = 0;
  let resent = 0;
  const submitted = new Set<string>();
  for (const [eid, deliveries] of byEid) {
    deliveries.sort((a, b) => a.request.receivedAt - b.request.receivedAt);
    const recordedAt = rowById.get(eid)?.submitted_at?.getTime() ?? Number.POSITIVE_INFINITY;
    deliveries.forEach(({ request }, index) => {
      const previous = deliveries[index - 1]?.request;
      // Two workers at once on the same opt-out: what the lease is there to prevent.
      if (previous && request.receivedAt < (previous.endedAt ?? Number.POSITIVE_INFINITY)) duplicates += 1;
      // Sent again although the companion knew it had gone through.
      else if (request.receivedAt > recordedAt) duplicates += 1;
    });
    const taken = deliveries.filter(({ request }) => isSuccess(request.answeredStatus)).length;
    if (taken > 0) submitted.add(eid);
    resent += Math.max(0, taken - 1);
  }
  const lost = acceptedIds.filter((id) => !submitted.has(id) || rowById.get(id)?.status !== 'submitted');
  return {
    acceptedIds,
    lost,
    figures: {
      sent: outcomes.length,
      accepted: acceptedIds.length,
      refused: outcomes.filter((outcome) => outcome.status === 503).length,
      submitted: submitted.size,
      duplicates,
      resent,
      lost: lost.length,
    },
  };
}

interface Scenario {
  name: string;
  upstream?: UpstreamScript;
  /** The fault, struck while the opt-outs are being sent. */
  strike(cluster: Cluster): Promise<void>;
  /** What the scenario must show besides the common checks (that the fault did happen, say). */
  check?(cluster: Cluster, figures: Omit<Figures, 'scenario' | 'seconds'>): void;
  /** Submissions that may be sent twice under the same eid. */
  allowedResends?(cluster: Cluster): number;
  /** True when 503 "database unavailable" is an expected answer. */
  postgresAway?: boolean;
}

async function run(scenario: Scenario): Promise<void> {
  const started = Date.now();
  const cluster = await Cluster.start(scenario.name, infrastructure, scenario.upstream ?? (() => ACCEPTED));
  try {
    const [outcomes] = await Promise.all([sendOptouts(cluster, SENT, SEND_OVER_MS), scenario.strike(cluster)]);
    const acceptedIds = outcomes.filter((outcome) => outcome.status === 202).map((outcome) => outcome.body!.id!);
    const rows = await drain(cluster, acceptedIds);
    const { figures, lost } = count(cluster, outcomes, rows);
    table.push({ scenario: scenario.name, ...figures, seconds: Math.round((Date.now() - started) / 100) / 10 });

    const unexpected = outcomes.filter(
      (outcome) => outcome.status !== 202 && !(scenario.postgresAway && outcome.status === 503 && outcome.body?.error === 'database unavailable'),
    );
    expect(unexpected.slice(0, 5)).toEqual([]);
    expect(lost.slice(0, 10)).toEqual([]);
    expect(figures.duplicates).toBe(0);
    expect(figures.resent).toBeLessThanOrEqual(scenario.allowedResends?.(cluster) ?? 0);
    expect(rows.filter((row) => row.status !== 'submitted').map((row) => `${row.id} ${row.status}`)).toEqual([]);
    expect(cluster.crashes()).toEqual([]);
    expect(cluster.leaks()).toEqual([]);
    scenario.check?.(cluster, figures);
  } finally {
    await cluster.stop();
  }
}

/** A stable pick among `choices` for an eid (a UUID), so that each opt-out meets one kind of trouble. */
const pick = (eid: string, choices: number) => Number.parseInt(eid.slice(0, 8), 16) % choices;

describe('fault scenarios', () => {
  it('the worker is SIGKILLed four times mid-run and restarted', async () => {
    await run({
      name: 'worker SIGKILLed x4',
      async strike(cluster) {
        for (let kill = 0; kill < 4; kill += 1) {
          await sleep(2200);
          await cluster.killWorker();
          await sleep(200);
          await cluster.startWorker();
        }
      },
      // A killed worker may have had its submissions taken without learning so: each is sent again with its eid.
      allowedResends: (cluster) => cluster.workerKills * WORKER_CONCURRENCY,
      check(cluster) {
        expect(cluster.workerKills).toBe(4);
      },
    });
  });

  it('a worker freezes (SIGSTOP) past its lock while another worker runs, then goes on', async () => {
    await run({
      name: 'worker frozen 8 s',
      // A slower OpenHIM, so that the worker has jobs in flight when it freezes: at the usual latency
      // a worker that keeps up holds one or none at a time, and the scenario tests nothing. Well under
      // PARTNER_TIMEOUT_MS, so that only the frozen worker's calls time out.
      upstream: () => ({ ...ACCEPTED, delayMs: 300 + Math.floor(Math.random() * 300) }),
      async strike(cluster) {
        await sleep(2000);
        await cluster.startWorker();
        await sleep(1000);
        cluster.freezeWorker();
        // Long enough for the other worker to take the jobs over, short of their 12 s leases: the lock
        // lapses up to WORKER_LOCK_MS (2 s) after the freeze, and BullMQ moves a stalled job at the
        // second of its checks (every 2 s) that finds it, so up to 6 s (at 5 s the thaw sometimes came first).
        await sleep(8000);
        cluster.thawWorker();
      },
      // Calls the frozen worker had in flight time out as it thaws (their answers came while it was
      // frozen): it sends those again, under the same eid.
      allowedResends: () => WORKER_CONCURRENCY,
      // The second worker takes the frozen one's jobs over, but their leases keep it from sending them.
      check(cluster) {
        expect(cluster.logLines().filter((line) => line.includes('opt-out job stalled')).length).toBeGreaterThan(0);
        expect(cluster.logLines().filter((line) => line.includes('held by another worker')).length).toBeGreaterThan(0);
      },
    });
  });

  it('Redis is flushed (FLUSHALL) twice mid-run', async () => {
    await run({
      name: 'Redis FLUSHALL x2',
      // A slower OpenHIM, so that jobs wait in the queue when it is flushed.
      upstream: () => ({ ...ACCEPTED, delayMs: 400 + Math.floor(Math.random() * 300) }),
      async strike(cluster) {
        await sleep(3000);
        await cluster.infrastructure.redis.flushAll();
        await sleep(3500);
        await cluster.infrastructure.redis.flushAll();
      },
      check(cluster) {
        const reEnqueued = cluster
          .logLines()
          .filter((line) => line.includes('reconciler enqueued queued opt-outs'))
          .reduce((sum, line) => sum + (JSON.parse(line) as { enqueued: number }).enqueued, 0);
        expect(reEnqueued).toBeGreaterThan(10);
      },
    });
  });

  it('Redis is stopped for three seconds mid-run and started again, empty', async () => {
    await run({
      name: 'Redis stopped 3 s',
      async strike(cluster) {
        await sleep(3000);
        await cluster.infrastructure.redis.stop();
        await sleep(3000);
        await cluster.infrastructure.redis.start();
      },
      check(cluster) {
        expect(cluster.logLines().some((line) => line.includes('Redis is away'))).toBe(true);
      },
    });
  });

  it('OpenHIM answers 503 to first tries, hangs past the timeout, and answers 429 with Retry-After', async () => {
    await run({
      name: 'upstream 503/hang/429',
      // A quarter meet 503 twice, a quarter a hang, an eighth a 429 (which pauses every worker for its Retry-After).
      upstream: (eid, n) => {
        switch (pick(eid, 8)) {
          case 0:
          case 1:
            return n <= 2 ? { status: 503, body: { error: 'unavailable' } } : ACCEPTED;
          case 2:
          case 3:
            return n === 1 ? { ...ACCEPTED, delayMs: 1600 } : ACCEPTED;
          case 4:
            return n === 1 ? { status: 429, headers: { 'retry-after': '1' }, body: { error: 'slow down' } } : ACCEPTED;
          default:
            return ACCEPTED;
        }
      },
      async strike() {},
      check(cluster) {
        const requests = cluster.deliveries().map(({ request }) => request);
        expect(requests.filter((request) => request.answeredStatus === 503).length).toBeGreaterThan(SENT / 4);
        expect(requests.filter((request) => request.answeredStatus === 429).length).toBeGreaterThan(SENT / 20);
        expect(requests.filter((request) => request.answeredStatus === undefined).length).toBeGreaterThan(SENT / 10);
      },
    });
  });

  it('PostgreSQL is restarted mid-run', async () => {
    await run({
      name: 'PostgreSQL restarted',
      postgresAway: true,
      async strike(cluster) {
        await sleep(4000);
        await cluster.infrastructure.postgres.stop();
        await sleep(2000);
        await cluster.infrastructure.postgres.start();
      },
      check(_cluster, figures) {
        expect(figures.refused).toBeGreaterThan(0);
        expect(figures.accepted + figures.refused).toBe(SENT);
      },
    });
  });
});
