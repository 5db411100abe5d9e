import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { createDeps, type Deps } from '../../src/deps';
import { dropDatabase, migrateDatabase } from '../../src/db/migrate';
import { jobIdFor } from '../../src/optouts/queue';
import { createReconcilerLock, reconcileOptouts } from '../../src/optouts/reconciler';
import { queuedOptoutRow } from '../helpers/app';
import { TEST_DATABASE_URL, testEnvironment } from '../helpers/env';

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
        reconcileOptouts({
          store: deps.optoutStore,
          queue: deps.optoutQueue,
          logger: deps.logger,
          graceMs: 0,
          lock: createReconcilerLock(deps.redis, queuePrefix, 60_000),
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
    const next = await reconcileOptouts({
      store: replicas[2]!.optoutStore,
      queue: replicas[2]!.optoutQueue,
      logger: replicas[2]!.logger,
      graceMs: 0,
      lock: createReconcilerLock(replicas[2]!.redis, queuePrefix, 60_000),
    });
    expect(next).toMatchObject({ enqueued: 0 });
  });
});
