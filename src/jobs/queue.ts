import { Queue } from 'bullmq';
import { logConnectionErrors, type RedisConnection } from '../db/connections';
import type { Logger } from '../ops/logger';

/**
 * A BullMQ queue of rows that PostgreSQL keeps (opt-outs, template sends): a job names its row and
 * holds nothing else, so Redis can lose every job and the reconciler rebuilds them from the rows.
 */

/** Finished jobs only need to stay long enough to dedupe a late duplicate enqueue; the database keeps the record. */
export const FINISHED_JOB_RETENTION = {
  removeOnComplete: { age: 24 * 3600, count: 10000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
} as const;

/** What a job carries: the id of its row. */
export interface RowJobData {
  id: string;
}

/** Which rows a queue holds: its BullMQ name, and the prefix of its job ids. */
export interface RowKind {
  queueName: string;
  /** BullMQ job ids may be neither all digits nor contain ':'; the prefix keeps one kind's jobs apart from another's. */
  jobIdPrefix: string;
  /** What a row is called in log lines: "opt-out", "template send". */
  label: string;
}

export const jobIdOf = (kind: RowKind, id: string) => `${kind.jobIdPrefix}-${id}`;

/**
 * The hand-over from web to worker. The job id comes from the row's id, so enqueueing the same row
 * again while its job is kept is a no-op: nothing here can double a send.
 */
export interface RowQueue {
  /**
   * Queues newly committed rows, in one round trip. Never throws: when Redis is away the reconciler
   * queues them once it is back.
   */
  handOver(ids: string[]): Promise<void>;
  /** Enqueues again (to run after `delayMs`, when its next try is not yet due) unless a job for the row is waiting, delayed or running; true when it did. */
  ensureQueued(id: string, delayMs?: number): Promise<boolean>;
  /**
   * For staff retries: like ensureQueued, but a job waiting out a retry delay is replaced by one that
   * runs as soon as a worker is free (with BullMQ's count of tries started again). False when the
   * row's last job is still running (it failed the row a moment ago): the reconciler then enqueues it
   * on its next run.
   */
  enqueueNow(id: string): Promise<boolean>;
  /** Jobs waiting for a worker, waiting out a retry delay, and running. */
  depth(): Promise<{ waiting: number; delayed: number; active: number }>;
  close(): Promise<void>;
  readonly kind: RowKind;
  readonly bullQueue: Queue<RowJobData>;
}

/**
 * Hands rows that staff put back in the queue to their jobs, now. Never throws: a row whose job could
 * not be replaced (still running, or Redis away) is logged and left to the reconciler.
 */
export async function enqueueRetried(queue: RowQueue, ids: string[], logger: Logger): Promise<void> {
  const { label } = queue.kind;
  for (const id of ids) {
    try {
      if (!(await queue.enqueueNow(id))) logger.warn({ id }, `${label} queued again while its last job was still running; the reconciler will enqueue it`);
    } catch (error) {
      logger.warn({ err: error, id }, `${label} queued again but not enqueued; the reconciler will enqueue it`);
    }
  }
}

const LIVE_STATES = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);
const JOB_NAME = 'run';

export function createRowQueue(options: {
  kind: RowKind;
  connection: RedisConnection;
  prefix?: string;
  /** Bounds BullMQ's retries only: the row's own count of tries decides when to give up. */
  maxAttempts: number;
  logger: Logger;
}): RowQueue {
  const { kind, connection, logger } = options;
  const queue = new Queue<RowJobData>(kind.queueName, {
    connection,
    prefix: options.prefix,
    defaultJobOptions: { attempts: options.maxAttempts, backoff: { type: 'row' }, ...FINISHED_JOB_RETENTION },
  });
  logConnectionErrors(queue, logger, `${kind.label} queue`);
  const enqueue = async (id: string, delayMs = 0) => {
    await queue.add(JOB_NAME, { id }, { jobId: jobIdOf(kind, id), ...(delayMs > 0 ? { delay: delayMs } : {}) });
  };
  const ensureQueued = async (id: string, delayMs = 0) => {
    const state = await queue.getJobState(jobIdOf(kind, id));
    if (LIVE_STATES.has(state)) return false;
    // A finished job would swallow the new one (same id): clear it first.
    if (state !== 'unknown') await queue.remove(jobIdOf(kind, id));
    await enqueue(id, delayMs);
    return true;
  };

  return {
    kind,
    bullQueue: queue,
    ensureQueued,
    async handOver(ids) {
      try {
        await queue.addBulk(ids.map((id) => ({ name: JOB_NAME, data: { id }, opts: { jobId: jobIdOf(kind, id) } })));
      } catch (error) {
        logger.warn({ err: error, ids }, `${kind.label}s committed but Redis is away: the reconciler will queue them`);
      }
    },
    async enqueueNow(id) {
      // A job waiting out a retry delay gives way to a new one: the row counts its tries afresh after a
      // staff retry, so must BullMQ (a promoted job would keep the tries it had used).
      if ((await queue.getJobState(jobIdOf(kind, id))) === 'delayed') await queue.remove(jobIdOf(kind, id));
      return ensureQueued(id);
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
