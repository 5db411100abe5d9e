import { Queue } from 'bullmq';
import { logConnectionErrors, type RedisConnection } from '../db/connections';
import type { Logger } from '../ops/logger';

export const OPTOUT_QUEUE = 'optouts';
const SUBMIT_JOB = 'submit';
/** How long enqueueNow waits for a running job of the same opt-out to finish. */
const ACTIVE_WAIT_MS = 2000;

/** Finished jobs only need to stay long enough to dedupe a late duplicate enqueue; the database keeps the record. */
export const FINISHED_JOB_RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 10000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
} as const;

/** Opt-outs this web process could not hand over (Redis away) that it keeps trying; past this the reconciler alone catches them. */
const MAX_PENDING_HAND_OVERS = 10000;
/** How often those are tried again when Redis gives no sign of being back. */
const PENDING_RETRY_MS = 2000;

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
   * Queues newly committed opt-outs, in one round trip. Never throws: when Redis is away they are kept
   * and queued as soon as Redis answers again (and the reconciler queues them should this process
   * stop first). True when they were queued now.
   */
  handOver(optoutIds: string[]): Promise<boolean>;
  /** Opt-outs waiting for Redis to come back before they can be handed over. */
  readonly pendingHandOvers: number;
  /**
   * Enqueues again (to run after `delayMs`, when its next try is not yet due) unless a job for the
   * opt-out is waiting, delayed or running; true when it did.
   */
  ensureQueued(optoutId: string, delayMs?: number): Promise<boolean>;
  /**
   * For staff retries: like ensureQueued, but a job waiting out a retry delay is replaced by one that
   * runs as soon as a worker is free (with BullMQ's count of tries started again), and a job still
   * running (it failed this opt-out a moment ago) is waited for briefly, so that it does not swallow
   * the new try. False when that job was still running: the reconciler then enqueues the opt-out
   * within a minute or two.
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

  const pending = new Set<string>();
  let retryTimer: NodeJS.Timeout | undefined;
  let retrying: Promise<void> | undefined;
  let closed = false;

  async function retryPending(): Promise<void> {
    let handed = 0;
    for (const optoutId of pending) {
      try {
        await enqueue(optoutId);
      } catch {
        break; // still away: try again later
      }
      pending.delete(optoutId);
      handed += 1;
    }
    if (handed > 0) logger.info({ handed, left: pending.size }, 'queued opt-outs that waited for Redis');
  }
  function scheduleRetry(): void {
    if (closed || retryTimer || pending.size === 0) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void retryNow();
    }, PENDING_RETRY_MS);
    retryTimer.unref();
  }
  function retryNow(): Promise<void> {
    retrying ??= retryPending().finally(() => {
      retrying = undefined;
      scheduleRetry();
    });
    return retrying;
  }
  // ioredis says "ready" each time it has reconnected: the moment to hand over what waited.
  const onReady = () => {
    if (pending.size > 0) void retryNow();
  };
  connection.on('ready', onReady);

  return {
    bullQueue: queue,
    enqueue,
    ensureQueued,
    get pendingHandOvers() {
      return pending.size;
    },
    async handOver(optoutIds) {
      try {
        await queue.addBulk(optoutIds.map((optoutId) => ({ name: SUBMIT_JOB, data: { optoutId }, opts: { jobId: jobIdFor(optoutId) } })));
        return true;
      } catch (error) {
        const room = MAX_PENDING_HAND_OVERS - pending.size;
        for (const optoutId of optoutIds.slice(0, room)) pending.add(optoutId);
        scheduleRetry();
        if (optoutIds.length <= room) {
          logger.warn({ err: error, optoutIds }, 'opt-outs committed but Redis is away: they are queued when Redis is back');
        } else {
          logger.error({ err: error, optoutIds: optoutIds.slice(room) }, 'opt-outs committed but Redis is away: the reconciler will queue them');
        }
        return false;
      }
    },
    async enqueueNow(optoutId) {
      const job = await queue.getJob(jobIdFor(optoutId));
      let state = await job?.getState();
      for (let waited = 0; job && state === 'active' && waited < ACTIVE_WAIT_MS; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        state = await job.getState();
      }
      // A job waiting out a retry delay gives way to a new one: the row counts its tries afresh after a
      // staff retry, so must BullMQ (a promoted job would keep the tries it had used).
      if (job && state === 'delayed') await queue.remove(jobIdFor(optoutId));
      return ensureQueued(optoutId);
    },
    async depth() {
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      return { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), delayed: counts.delayed ?? 0, active: counts.active ?? 0 };
    },
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      connection.off('ready', onReady);
      if (pending.size > 0) logger.warn({ pending: pending.size }, 'stopping with opt-outs not yet queued: the reconciler will queue them');
      await queue.close();
    },
  };
}
