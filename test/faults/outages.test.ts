import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { jobIdFor, OPTOUT_JOBS } from '../../src/optouts/queue';
import { createReconcilerLock, reconcileQueue } from '../../src/jobs/reconciler';
import { eventually, optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { OPENHIM_ROUTE, openhimPartnerEnv } from '../helpers/fake-partner';
import { startOwnPostgres, type OwnPostgres } from '../helpers/postgres-server';
import { startRestartableRedis, type RestartableRedis } from '../helpers/redis-server';

/**
 * PostgreSQL and Redis going away under a running companion. Both servers are this file's own, so
 * stopping and flushing them disturbs no other test.
 */

let redis: RestartableRedis;
let postgres: OwnPostgres;
let databaseUrl: string;

beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRestartableRedis(), startOwnPostgres()]);
  databaseUrl = await postgres.createDatabase('outages');
});
afterAll(async () => {
  await redis?.stop();
  await postgres?.destroy();
});

const rowsFor = (app: TestApp, contactUuid: string) => app.deps.db.optout.count({ where: { contactUuid } });

async function timedPost(app: TestApp, body: object) {
  const started = Date.now();
  const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
  return { response, ms: Date.now() - started };
}

describe('the web process while a server is away', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url } });
  });
  afterAll(() => app.stop());

  it('answers 202 at once while Redis is down, names Redis in /readyz, and the reconciler queues the opt-out when Redis is back', async () => {
    await redis.stop();
    const body = optoutWebhook();
    let response;
    try {
      let ms;
      ({ response, ms } = await timedPost(app, body));
      expect(response.status).toBe(202);
      expect(ms).toBeLessThan(1000);
      expect(await rowsFor(app, body.contact.uuid)).toBe(1);

      const ready = await app.http.get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ checks: { postgres: 'ok', redis: 'down' }, error: 'redis not answering' });
    } finally {
      await redis.start();
    }
    await eventually(async () => ((await app.http.get('/readyz')).status === 200 ? true : undefined), 10000);
    expect(await app.deps.optoutQueue.bullQueue.getJobState(jobIdFor(response.body.id))).toBe('unknown');
    // The worker's reconciler, as its next run would.
    expect(await reconcileQueue({ ...reconcilerDeps(app), graceMs: 0 })).toMatchObject({ failed: 0 });
    expect((await app.deps.optoutQueue.bullQueue.getJob(jobIdFor(response.body.id)))?.data).toEqual({ id: response.body.id });
  });

  it('answers 202 within seconds while Redis is frozen (connected, answering nothing), and the opt-out is queued once', async () => {
    const body = optoutWebhook();
    redis.freeze();
    let response;
    try {
      let ms;
      ({ response, ms } = await timedPost(app, body));
      expect(response.status).toBe(202);
      expect(ms).toBeLessThan(4000);
    } finally {
      redis.thaw();
    }
    // The add that timed out may have run once Redis thawed: the reconciler then finds its job live and adds none.
    expect(await reconcileQueue({ ...reconcilerDeps(app), graceMs: 0 })).toMatchObject({ failed: 0 });
    const waiting = await app.deps.optoutQueue.bullQueue.getJobs(['waiting']);
    expect(waiting.filter((candidate) => candidate.data.id === response.body.id)).toHaveLength(1);
  });

  it('answers 503 "database unavailable" while PostgreSQL is down, writes nothing, and carries on when it is back', async () => {
    const counts = await app.deps.optoutQueue.bullQueue.getJobCounts();
    const body = optoutWebhook();
    await postgres.stop();
    try {
      const { response, ms } = await timedPost(app, body);
      expect(response.status).toBe(503);
      expect(response.body).toEqual({ error: 'database unavailable' });
      expect(response.headers['retry-after']).toBe('5');
      expect(ms).toBeLessThan(6000);

      const lookup = await app.http.get(`/api/v1/optouts/${randomUUID()}`).set('Authorization', `Token ${app.token}`);
      expect(lookup.status).toBe(503);

      const ready = await app.http.get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ checks: { postgres: 'down', redis: 'ok' }, error: 'postgres not answering' });
    } finally {
      await postgres.start();
    }
    expect(await rowsFor(app, body.contact.uuid)).toBe(0);
    expect(await app.deps.optoutQueue.bullQueue.getJobCounts()).toEqual(counts);

    const { response } = await timedPost(app, body);
    expect(response.status).toBe(202);
    expect((await app.http.get('/readyz')).status).toBe(200);
    expect(app.logs.join('')).not.toMatch(/unhandled error/);
  });
});

describe('the reconciler', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url } });
  });
  afterAll(() => app.stop());

  it('queues again, once, every queued opt-out whose job Redis lost or gave up on', async () => {
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const { response } = await timedPost(app, optoutWebhook());
      ids.push(response.body.id);
    }
    await redis.flushAll();
    // A job whose BullMQ retries ran out while its row is still queued (the database was away, say).
    await app.deps.optoutQueue.bullQueue.add('run', { id: ids[0]! }, { jobId: jobIdFor(ids[0]!), attempts: 1 });
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const failing = new Worker(OPTOUT_JOBS.queueName, () => Promise.reject(new Error('attempts used up')), { connection, prefix: app.deps.config.queuePrefix });
    await eventually(async () => ((await app.deps.optoutQueue.bullQueue.getJobState(jobIdFor(ids[0]!))) === 'failed' ? true : undefined));
    await failing.close();
    connection.disconnect();

    const reconcile = async () => {
      const result = await reconcileQueue({ ...reconcilerDeps(app), graceMs: 0 });
      if (typeof result === 'string') throw new Error(result);
      return result;
    };
    const first = await reconcile();
    expect(first.enqueued).toBeGreaterThanOrEqual(ids.length);
    for (const id of ids) expect(await app.deps.optoutQueue.bullQueue.getJobState(jobIdFor(id))).toBe('waiting');

    const second = await reconcile();
    expect(second).toMatchObject({ enqueued: 0, failed: 0 });
    const waiting = await app.deps.optoutQueue.bullQueue.getJobs(['waiting']);
    expect(waiting.filter((job) => ids.includes(job.data.id))).toHaveLength(ids.length);
  });

  it('leaves opt-outs younger than the grace period to the web process', async () => {
    const { response } = await timedPost(app, optoutWebhook());
    await redis.flushAll();
    await reconcileQueue({ ...reconcilerDeps(app), graceMs: 60_000 });
    expect(await app.deps.optoutQueue.bullQueue.getJobState(jobIdFor(response.body.id))).toBe('unknown');
  });
});

function reconcilerDeps(target: TestApp) {
  const { deps } = target;
  return {
    queued: deps.optoutStore.queuedOptouts,
    queue: deps.optoutQueue,
    logger: deps.logger,
    lock: createReconcilerLock(deps.redis, deps.config.queuePrefix, deps.optoutQueue, 60_000),
  };
}

describe('the worker', () => {
  let app: TestApp;
  let partner: FakePartner;
  /** Contacts whose submission is answered only after PostgreSQL was stopped (it starts again 1.5 s later). */
  const stopPostgresFor = new Set<string>();
  let restarted: Promise<void> | undefined;

  beforeAll(async () => {
    partner = await startFakePartner();
    partner.on(OPENHIM_ROUTE, (request) => {
      const { sid } = request.body as { sid: string };
      if (stopPostgresFor.delete(sid)) {
        restarted = postgres.stop().then(() => new Promise((resolve) => setTimeout(resolve, 1500)).then(() => postgres.start()));
        return { status: 202, body: { status: 'ok' }, delayMs: 300 };
      }
      return { status: 202, body: { status: 'ok' } };
    });
    app = await startTestApp({
      role: 'all',
      env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, ...openhimPartnerEnv(partner), OPTOUT_BACKOFF_MS: '50', PARTNER_TIMEOUT_MS: '1000' },
    });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  const fieldsBody = () => optoutWebhook({ urn: 'tel:+27820001001', fields: { facility_code: '123456' } });
  const submissionsOf = (id: string) => partner.received(OPENHIM_ROUTE).filter((request) => (request.body as { eid: string }).eid === id);

  it('writes an accepted submission once PostgreSQL is back instead of sending it again', async () => {
    const body = fieldsBody();
    stopPostgresFor.add(body.contact.uuid);
    const { response } = await timedPost(app, body);
    expect(response.status).toBe(202);
    const row = await eventually(async () => {
      await restarted;
      const found = await app.deps.db.optout.findUnique({ where: { id: response.body.id } }).catch(() => null);
      return found?.status === 'submitted' ? found : undefined;
    }, 20000);
    expect(row.attempts).toBe(1);
    expect(submissionsOf(response.body.id)).toHaveLength(1);
  });

  const submitted = (id: string) =>
    eventually(async () => {
      const found = await app.deps.db.optout.findUnique({ where: { id } });
      return found?.status === 'submitted' ? found : undefined;
    });

  it('stores at most 2,000 characters of a partner answer, made storable, and reads no more than 1 MiB of one', async () => {
    partner.queue(
      OPENHIM_ROUTE,
      { status: 503, rawBody: `busy\u0000${'\ud800'}${'x'.repeat(5000)}` },
      { status: 200, rawBody: 'y'.repeat(2 * 1024 * 1024) },
    );
    const { response } = await timedPost(app, fieldsBody());
    expect((await submitted(response.body.id)).attempts).toBe(3);
    const [first, second] = await app.deps.optoutStore.attemptsOf(response.body.id);
    expect(first!.response).toHaveLength(2000);
    expect(first!.response!.startsWith('busy\uFFFD\uFFFDx')).toBe(true);
    expect(second).toMatchObject({ outcome: 'transient', httpStatus: 200, error: 'openhim answered HTTP 200 with an answer larger than 1048576 bytes' });
  });

  it('keeps finished jobs in Redis for a bounded time and number', async () => {
    const { response } = await timedPost(app, fieldsBody());
    await submitted(response.body.id);
    const job = await app.deps.optoutQueue.bullQueue.getJob(jobIdFor(response.body.id));
    expect(job?.opts).toMatchObject({ removeOnComplete: { age: 24 * 3600, count: 10000 }, removeOnFail: { age: 7 * 24 * 3600, count: 10000 } });
  });

  it('sends again, with the same eid, a submission whose answer never came (a hang past the timeout)', async () => {
    const body = fieldsBody();
    partner.queue(OPENHIM_ROUTE, { status: 202, body: { status: 'ok' }, delayMs: 1500 });
    const { response } = await timedPost(app, body);
    expect((await submitted(response.body.id)).attempts).toBe(2);
    const attempts = await app.deps.optoutStore.attemptsOf(response.body.id);
    expect(attempts[0]).toMatchObject({ outcome: 'transient', error: 'openhim did not answer in time', httpStatus: null });
    const sent = submissionsOf(response.body.id);
    expect(sent).toHaveLength(2);
    expect(sent[0]!.answeredStatus).toBeUndefined(); // the companion hung up before the answer
    expect(sent[1]!.body).toEqual(sent[0]!.body);
  });
});
