import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createRowQueue, jobIdOf, type RowJobData, type RowKind, type RowQueue } from '../../src/jobs/queue';
import { TEST_REDIS_URL } from '../helpers/env';
import { captureLogs } from '../helpers/logs';

const kind: RowKind = { queueName: 'rows', jobIdPrefix: 'row', label: 'row' };
const jobIdFor = (id: string) => jobIdOf(kind, id);

describe('row queue: enqueueNow (staff retries)', () => {
  const prefix = `test-${randomUUID().slice(0, 8)}`;
  let connection: Redis;
  let workerConnection: Redis;
  let queue: RowQueue;
  let worker: Worker<RowJobData> | undefined;

  beforeAll(async () => {
    connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    workerConnection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    queue = createRowQueue({ kind, connection, prefix, maxAttempts: 3, logger: captureLogs().logger });
  });
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
  });
  afterAll(async () => {
    await queue.bullQueue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
    workerConnection.disconnect();
  });

  /** A worker whose first run lasts until `finish` is called. */
  function slowWorker() {
    const runs: string[] = [];
    const finishers: Array<() => void> = [];
    let started: () => void = () => undefined;
    const firstRunStarted = new Promise<void>((resolve) => (started = resolve));
    worker = new Worker<RowJobData>(
      kind.queueName,
      async (job) => {
        runs.push(job.data.id);
        if (runs.length === 1) {
          started();
          await new Promise<void>((resolve) => finishers.push(resolve));
        }
      },
      { connection: workerConnection, prefix },
    );
    return { firstRunStarted, finish: () => finishers.forEach((finish) => finish()) };
  }

  it('leaves a job that keeps running to the reconciler', async () => {
    const id = randomUUID();
    const { firstRunStarted, finish } = slowWorker();
    await queue.ensureQueued(id);
    await firstRunStarted;
    expect(await queue.enqueueNow(id)).toBe(false);
    finish();
  });

  it('runs a job that waits out a retry delay at once, with its count of tries started again', async () => {
    const id = randomUUID();
    await queue.bullQueue.add('run', { id }, { jobId: jobIdFor(id), delay: 60 * 60 * 1000 });
    // As if it had failed twice of its three tries: the staff retry must not leave it one.
    await connection.hset(`${prefix}:${kind.queueName}:${jobIdFor(id)}`, 'atm', '2');
    expect(await queue.enqueueNow(id)).toBe(true);
    const job = (await queue.bullQueue.getJob(jobIdFor(id)))!;
    expect(await job.getState()).toBe('waiting');
    expect(job.attemptsMade).toBe(0);
  });
});
