import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { createDeps, type Deps } from '../../src/deps';
import { dropDatabase, migrateDatabase } from '../../src/db/migrate';
import { jobIdFor } from '../../src/optouts/queue';
import { createReconcilerLock, reconcileQueue } from '../../src/jobs/reconciler';
import { eventually, optoutWebhook, queuedOptoutRow, startTestApp, type TestApp } from '../helpers/app';
import { createScratchDatabase, TEST_DATABASE_URL, testEnvironment } from '../helpers/env';
import { OPENHIM_ROUTE, openhimPartnerEnv, startFakePartner, type FakePartner } from '../helpers/fake-partner';

/** Three worker replicas' reconcilers, started at the same moment on one PostgreSQL and one Redis. */
describe('the reconciler on three replicas', () => {
  const replicas: Deps[] = [];
  const queuePrefix = `reconcile-${randomUUID().slice(0, 8)}`;
  // A database of its own: the reconciler looks at every queued opt-out, other test files' too.
  const databaseUrl = Object.assign(new URL(TEST_DATABASE_URL), { pathname: `/companion_reconcile_${randomUUID().slice(0, 8)}` }).toString();
  beforeAll(async () => {
    await migrateDatabase(databaseUrl, { info: () => undefined });
    for (let index = 0; index < 3; index += 1) {
      replicas.push(await createDeps(loadConfig(testEnvironment({ QUEUE_PREFIX: queuePrefix, DATABASE_URL: databaseUrl }))));
    }
  });
  afterAll(async () => {
    await Promise.all(replicas.map((deps) => deps.close()));
    await dropDatabase(databaseUrl);
  });

  it('enqueues each stray opt-out once: one replica does the run, the others skip it', async () => {
    const [first] = replicas;
    const { id: apiClientId } = await first!.apiClients.create(`reconcile-${randomUUID()}`);
    // Queued rows with no job, as Redis leaves them after losing its data.
    const strays = Array.from({ length: 300 }, () => randomUUID());
    await first!.optoutStore.insertUnlessDuplicate(strays.map((id) => queuedOptoutRow(apiClientId, { id })));

    const runs = await Promise.all(
      replicas.map((deps) =>
        reconcileQueue({
          queued: deps.optoutStore.queuedOptouts,
          queue: deps.optoutQueue,
          logger: deps.logger,
          graceMs: 0,
          lock: createReconcilerLock(deps.redis, queuePrefix, deps.optoutQueue, 60_000),
        }),
      ),
    );
    const done = runs.filter((run) => typeof run !== 'string');
    expect(done).toHaveLength(1);
    expect(runs.filter((run) => run === 'another replica is reconciling')).toHaveLength(2);
    expect(done[0]).toMatchObject({ enqueued: strays.length, failed: 0 });
    const jobs = await first!.optoutQueue.bullQueue.getJobs(['waiting']);
    expect(jobs.map((job) => job.id).filter((id) => strays.some((stray) => jobIdFor(stray) === id))).toHaveLength(strays.length);

    // The lock is released after the run: the next run (on any replica) goes ahead and finds nothing to do.
    const next = await reconcileQueue({
      queued: replicas[2]!.optoutStore.queuedOptouts,
      queue: replicas[2]!.optoutQueue,
      logger: replicas[2]!.logger,
      graceMs: 0,
      lock: createReconcilerLock(replicas[2]!.redis, queuePrefix, replicas[2]!.optoutQueue, 60_000),
    });
    expect(next).toMatchObject({ enqueued: 0 });
  });
});

/** Redis loses its jobs while an opt-out waits out a partner's Retry-After: the wait must outlive the jobs. */
describe('the reconciler after Redis lost the queue', () => {
  let app: TestApp;
  let partner: FakePartner;
  let database: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    // A database of its own: the reconciler looks at every queued opt-out.
    database = await createScratchDatabase('reconcile_delay');
    partner = await startFakePartner();
    partner.on(OPENHIM_ROUTE, { status: 503, body: { error: 'busy' }, headers: { 'retry-after': '120' } });
    app = await startTestApp({ role: 'all', env: { ...openhimPartnerEnv(partner), DATABASE_URL: database.url, OPTOUT_BACKOFF_MS: '20' } });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
    await database.drop();
  });

  /** Deletes this app's queue keys only (never the shared Redis' others), as a flush or a Redis restarted empty would. */
  async function dropQueueKeys(): Promise<void> {
    const keys = await app.deps.redis.keys(`${app.deps.config.queuePrefix}:*`);
    if (keys.length > 0) await app.deps.redis.del(...keys);
  }

  it("re-queues an opt-out that waits out a partner's Retry-After with what is left of the wait, not at once", async () => {
    const body = optoutWebhook({ urn: 'tel:+27820001001', fields: { facility_code: '123456', registered_by: '+27820001002' } });
    const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
    expect(response.status).toBe(202);
    const id = response.body.id as string;
    await eventually(async () => ((await app.deps.db.optout.findUnique({ where: { id } }))?.attempts === 1 ? true : undefined));
    await dropQueueKeys();
    expect(await app.deps.optoutQueue.bullQueue.getJob(jobIdFor(id))).toBeUndefined();

    const run = await reconcileQueue({
      queued: app.deps.optoutStore.queuedOptouts,
      queue: app.deps.optoutQueue,
      logger: app.deps.logger,
      graceMs: 0,
      lock: createReconcilerLock(app.deps.redis, app.deps.config.queuePrefix, app.deps.optoutQueue, 60_000),
    });
    expect(run).toMatchObject({ enqueued: 1 });
    const job = (await app.deps.optoutQueue.bullQueue.getJob(jobIdFor(id)))!;
    expect(await job.getState()).toBe('delayed');
    const dueInMs = job.timestamp + job.delay - Date.now();
    expect(dueInMs).toBeGreaterThan(100_000);
    expect(dueInMs).toBeLessThanOrEqual(120_000);
    expect(partner.received(OPENHIM_ROUTE).filter((request) => (request.body as { eid: string }).eid === id)).toHaveLength(1);
  });
});
