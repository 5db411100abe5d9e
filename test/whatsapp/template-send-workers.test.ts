import { randomUUID } from 'node:crypto';
import { eventually, startTestApp, type TestApp } from '../helpers/app';
import { createScratchDatabase } from '../helpers/env';
import { startFakePartner, type FakePartner, type ReceivedRequest } from '../helpers/fake-partner';
import { startCompanion, type CompanionProcess } from '../helpers/process';
import { startRestartableRedis, type RestartableRedis } from '../helpers/redis-server';
import { CLOUD_MESSAGES_ROUTE, cloudAccepted, cloudEnv, cloudMessageIdFor, freshNumber } from './support';

/**
 * Queued template sends worked on by worker processes (dist/main.js): one killed mid-batch, and two
 * sharing WHATSAPP_SEND_RATE. Redis is this file's own, so that it may be flushed.
 */

const template = { name: 'appointment_reminder' };

let redis: RestartableRedis;
let database: Awaited<ReturnType<typeof createScratchDatabase>>;
let upstream: FakePartner;
let web: TestApp;
let env: Record<string, string>;
const workers: CompanionProcess[] = [];

beforeAll(async () => {
  [redis, database, upstream] = await Promise.all([startRestartableRedis(), createScratchDatabase('template_send_workers'), startFakePartner()]);
  env = { ...cloudEnv(upstream), DATABASE_URL: database.url, REDIS_URL: redis.url, QUEUE_PREFIX: `sends-${randomUUID().slice(0, 8)}` };
  web = await startTestApp({ env });
});
afterEach(async () => {
  // Workers a test left running (it failed, say) stop here, so the next test's workers are alone.
  const running = workers.splice(0).filter((worker) => worker.child.exitCode === null && worker.child.signalCode === null);
  for (const worker of running) worker.child.kill('SIGKILL');
  await Promise.all(running.map((worker) => worker.exited));
});
afterAll(async () => {
  await web.stop();
  await upstream.stop();
  await redis.stop();
  await database.drop();
});

const recipientOf = (request: ReceivedRequest) => (request.body as { to: string }).to;
const calls = () => upstream.received(CLOUD_MESSAGES_ROUTE);

/** A worker process with the file's settings and `settings`, once it has started taking template sends. */
async function startWorker(settings: Record<string, string>): Promise<CompanionProcess> {
  const worker = startCompanion(['serve', '--role', 'worker'], { ...env, ...settings });
  workers.push(worker);
  await eventually(async () => (worker.output().includes('worker: sending queued WhatsApp templates') ? true : undefined), 20000);
  return worker;
}

/** Queues one send to each of `count` fresh numbers through the web process: id and recipient of each. */
async function queueSends(count: number): Promise<Array<{ id: string; to: string }>> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const to = freshNumber();
      const response = await web.http.post('/api/v1/whatsapp/template-sends').set('Authorization', `Token ${web.token}`).send({ to, template });
      expect(response.status).toBe(202);
      return { id: response.body.id as string, to };
    }),
  );
}

/** PostgreSQL's sessions of the process whose connections carry this application_name. */
async function sessionsOf(applicationName: string): Promise<number> {
  const [row] = await web.deps.db.$queryRaw<Array<{ count: number }>>`SELECT count(*)::int AS count FROM pg_stat_activity WHERE application_name = ${applicationName}`;
  return row!.count;
}

const sendsOf = (ids: string[]) => web.deps.db.templateSend.findMany({ where: { id: { in: ids } } });

async function allSent(ids: string[], timeoutMs: number) {
  return eventually(async () => {
    const rows = await sendsOf(ids);
    return rows.every((row) => row.status === 'sent') ? rows : undefined;
  }, timeoutMs, 100);
}

describe('a worker killed mid-batch, and Redis flushed', () => {
  it('sends every queued send; none twice but those under way at the kill, and their tries are counted', async () => {
    const SENDS = 30;
    // The first ten calls are answered at once, the next ten after a second: the kill finds sends done and sends under way.
    let calledSoFar = 0;
    upstream.on(CLOUD_MESSAGES_ROUTE, (request) => {
      calledSoFar += 1;
      return { ...cloudAccepted(recipientOf(request)), delayMs: calledSoFar > 10 && calledSoFar <= 20 ? 1000 : 0 };
    });
    const sends = await queueSends(SENDS);
    const ids = sends.map((send) => send.id);
    const callsTo = (to: string) => calls().filter((request) => recipientOf(request) === to).length;
    const callsToAll = () => sends.reduce((sum, { to }) => sum + callsTo(to), 0);
    // A short lock, reconciler interval and grace, so that the next worker takes over at once; the rate keeps calls coming in steps.
    const settings = { WHATSAPP_SEND_RATE: '20', WHATSAPP_TIMEOUT_MS: '2000', WORKER_LOCK_MS: '1000', RECONCILE_INTERVAL_MS: '500', RECONCILE_GRACE_MS: '0' };

    // Its sessions are named, to see when PostgreSQL is done with them.
    const firstDatabaseUrl = new URL(database.url);
    firstDatabaseUrl.searchParams.set('application_name', 'killed-worker');
    const first = await startWorker({ ...settings, DATABASE_URL: firstDatabaseUrl.toString() });
    await eventually(async () => {
      const sent = await web.deps.db.templateSend.count({ where: { id: { in: ids }, status: 'sent' } });
      return sent >= 5 && callsToAll() >= 15 ? true : undefined;
    }, 15000, 10);
    expect(await sessionsOf('killed-worker')).toBeGreaterThan(0);
    first.child.kill('SIGKILL');
    await first.exited;
    await redis.flushAll();
    // A statement the worker sent just before it died still runs to its end: read the rows once none is left.
    await eventually(async () => ((await sessionsOf('killed-worker')) === 0 ? true : undefined));

    // Under way at the kill: a try begun (the send leased, its try counted) and its outcome not written.
    const rowsAtKill = await sendsOf(ids);
    const underWay = new Set(rowsAtKill.filter((row) => row.status === 'queued' && row.leaseUntil !== null).map((row) => row.id));
    const sentAtKill = rowsAtKill.filter((row) => row.status === 'sent').length;
    expect(underWay.size).toBeGreaterThan(0);
    expect(sentAtKill).toBeGreaterThan(0);
    expect(sentAtKill + underWay.size).toBeLessThan(SENDS);

    await startWorker(settings);
    // The sends under way wait for their leases to end (WHATSAPP_TIMEOUT_MS + WORKER_LOCK_MS) before they are tried again.
    const rows = await allSent(ids, 25000);

    for (const { id, to } of sends) {
      const row = rows.find((candidate) => candidate.id === id)!;
      expect({ id, messageId: row.messageId }).toEqual({ id, messageId: cloudMessageIdFor(to) });
      if (underWay.has(id)) {
        // Tried again once its lease ended: the one repeat allowed, when the kill fell between the call and its record.
        expect({ id, attempts: row.attempts, calledTwiceAtMost: callsTo(to) <= 2 }).toEqual({ id, attempts: 2, calledTwiceAtMost: true });
      } else {
        expect({ id, attempts: row.attempts, calls: callsTo(to) }).toEqual({ id, attempts: 1, calls: 1 });
      }
      expect(callsTo(to)).toBeGreaterThanOrEqual(1);
    }
    expect(callsToAll() - SENDS).toBeLessThanOrEqual(underWay.size);
  }, 45000);
});

describe('two workers', () => {
  it('keep to WHATSAPP_SEND_RATE between them, and both send', async () => {
    const RATE = 10;
    const SENDS = 50;
    upstream.on(CLOUD_MESSAGES_ROUTE, (request) => ({ ...cloudAccepted(recipientOf(request)), delayMs: 20 }));
    const pair = await Promise.all([1, 2].map(() => startWorker({ WHATSAPP_SEND_RATE: String(RATE) })));
    const before = calls().length;
    const sends = await queueSends(SENDS);
    await allSent(sends.map((send) => send.id), 20000);

    const times = calls()
      .slice(before)
      .map((request) => request.receivedAt)
      .sort((a, b) => a - b);
    expect(times).toHaveLength(SENDS);
    // BullMQ's limiter lets a tenth of RATE start in each window of a tenth of a second (limiterFor): over the run no
    // more than RATE a second; in any one second RATE and a window's worth, with room for the calls' uneven travel.
    const seconds = (times.at(-1)! - times[0]!) / 1000;
    expect((SENDS - 1) / seconds).toBeLessThanOrEqual(RATE * 1.1);
    const busiestSecond = Math.max(...times.map((start) => times.filter((time) => time >= start && time < start + 1000).length));
    expect(busiestSecond).toBeLessThanOrEqual(1.5 * RATE);

    // Each worker logs its sends; a line may still be on its way when the rows are all there.
    const sentBy = () => pair.map((worker) => worker.output().split('\n').filter((line) => line.includes('"msg":"template send sent"')).length);
    const counts = await eventually(async () => (sentBy()[0]! + sentBy()[1]! >= SENDS ? sentBy() : undefined), 5000);
    expect(counts[0]! + counts[1]!).toBe(SENDS);
    expect(counts.every((count) => count > 0)).toBe(true);

    for (const worker of pair) worker.child.kill('SIGTERM');
    expect(await Promise.all(pair.map((worker) => worker.exited))).toEqual([0, 0]);
  }, 40000);
});
