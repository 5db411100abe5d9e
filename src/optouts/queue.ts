import { Queue } from 'bullmq';
import { logConnectionErrors, type RedisConnection } from '../db/connections';
import type { Logger } from '../ops/logger';

export const OPTOUT_QUEUE = 'optouts';
const SUBMIT_JOB = 'submit';

/** Finished jobs only need to stay long enough to dedupe a late duplicate enqueue; the database keeps the record. */
export const FINISHED_JOB_RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 10000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
} as const;

/** BullMQ job ids may be neither all digits nor contain ':'; a prefix keeps them apart from other jobs. */
export function jobIdFor(optoutId: string): string {
  return `optout-${optoutId}`;
}

export interface SubmitJobData {
  optoutId: string;
}

/**
 * The hand-over from web to worker. The job id comes from the opt-out id, so enqueueing the same
 * opt-out again while its job is kept is a no-op: nothing here can double a submission.
 */
export interface OptoutQueue {
  enqueue(optoutId: string): Promise<void>;
  /**
   * Queues newly committed opt-outs, in one round trip. Never throws: when Redis is away the
   * reconciler queues them once it is back.
   */
  handOver(optoutIds: string[]): Promise<void>;
  /**
   * Enqueues again (to run after `delayMs`, when its next try is not yet due) unless a job for the
   * opt-out is waiting, delayed or running; true when it did.
   */
  ensureQueued(optoutId: string, delayMs?: number): Promise<boolean>;
  /**
   * For staff retries: like ensureQueued, but a job waiting out a retry delay is replaced by one that
   * runs as soon as a worker is free (with BullMQ's count of tries started again). False when the
   * opt-out's last job is still running (it failed the opt-out a moment ago): the reconciler then
   * enqueues it on its next run.
   */
  enqueueNow(optoutId: string): Promise<boolean>;
  /** Jobs waiting for a worker, waiting out a retry delay, and running. */
  depth(): Promise<{ waiting: number; delayed: number; active: number }>;
  close(): Promise<void>;
  readonly bullQueue: Queue<SubmitJobData>;
}

const LIVE_STATES = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);

export function createOptoutQueue(options: {
  connection: RedisConnection;
  prefix?: string;
  maxAttempts: number;
  logger: Logger;
}): OptoutQueue {
  const { connection, logger } = options;
  const queue = new Queue<SubmitJobData>(OPTOUT_QUEUE, {
    connection,
    prefix: options.prefix,
    defaultJobOptions: {
      // The row's own attempt count decides when to give up; this only bounds BullMQ's retries.
      attempts: options.maxAttempts,
      backoff: { type: 'optout' },
      ...FINISHED_JOB_RETENTION,
    },
  });
  logConnectionErrors(queue, logger, 'opt-out queue');
  const enqueue = async (optoutId: string, delayMs = 0) => {
    await queue.add(SUBMIT_JOB, { optoutId }, { jobId: jobIdFor(optoutId), ...(delayMs > 0 ? { delay: delayMs } : {}) });
  };
  const ensureQueued = async (optoutId: string, delayMs = 0) => {
    const state = await queue.getJobState(jobIdFor(optoutId));
    if (LIVE_STATES.has(state)) return false;
    // A finished job would swallow the new one (same id): clear it first.
    if (state !== 'unknown') await queue.remove(jobIdFor(optoutId));
    await enqueue(optoutId, delayMs);
    return true;
  };

  return {
    bullQueue: queue,
    enqueue,
    ensureQueued,
    async handOver(optoutIds) {
      try {
        await queue.addBulk(optoutIds.map((optoutId) => ({ name: SUBMIT_JOB, data: { optoutId }, opts: { jobId: jobIdFor(optoutId) } })));
      } catch (error) {
        logger.warn({ err: error, optoutIds }, 'opt-outs committed but Redis is away: the reconciler will queue them');
      }
    },
    async enqueueNow(optoutId) {
      // A job waiting out a retry delay gives way to a new one: the row counts its tries afresh after a
      // staff retry, so must BullMQ (a promoted job would keep the tries it had used).
      if ((await queue.getJobState(jobIdFor(optoutId))) === 'delayed') await queue.remove(jobIdFor(optoutId));
      return ensureQueued(optoutId);
    },
    async depth() {
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      return { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), delayed: counts.delayed ?? 0, active: counts.active ?? 0 };
    },
    async close() {
      await queue.close();
    },
  };
}
