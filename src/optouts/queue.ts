import { Queue, type ConnectionOptions } from 'bullmq';

export const OPTOUT_QUEUE = 'optouts';
const SUBMIT_JOB = 'submit';

/** BullMQ job ids may be neither all digits nor contain ':'; a prefix keeps them apart from other jobs. */
export function jobIdFor(optoutId: string): string {
  return `optout-${optoutId}`;
}

export interface SubmitJobData {
  optoutId: string;
}

/**
 * The durable hand-over from web to worker. The job id comes from the opt-out id, so enqueueing
 * the same opt-out again while its job is kept is a no-op.
 */
export interface OptoutQueue {
  enqueue(optoutId: string): Promise<void>;
  /** Enqueues again unless a job for the opt-out is waiting, delayed or running; true when it did. */
  ensureQueued(optoutId: string): Promise<boolean>;
  /** Like ensureQueued, but a job waiting out a retry delay runs as soon as a worker is free. */
  enqueueNow(optoutId: string): Promise<void>;
  /** Jobs waiting for a worker, waiting out a retry delay, and running. */
  depth(): Promise<{ waiting: number; delayed: number; active: number }>;
  close(): Promise<void>;
  readonly bullQueue: Queue<SubmitJobData>;
}

export function createOptoutQueue(options: { connection: ConnectionOptions; prefix?: string; maxAttempts: number }): OptoutQueue {
  const queue = new Queue<SubmitJobData>(OPTOUT_QUEUE, {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: {
      // The row's own attempt count decides when to give up; this only bounds BullMQ's retries.
      attempts: options.maxAttempts,
      backoff: { type: 'optout' },
      // Finished jobs only need to stay long enough to dedupe a late duplicate enqueue.
      removeOnComplete: { age: 24 * 3600, count: 10000 },
      removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
    },
  });
  const enqueue = async (optoutId: string) => {
    await queue.add(SUBMIT_JOB, { optoutId }, { jobId: jobIdFor(optoutId) });
  };
  const ensureQueued = async (optoutId: string) => {
    const job = await queue.getJob(jobIdFor(optoutId));
    if (job) {
      const state = await job.getState();
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return false;
      await job.remove();
    }
    await enqueue(optoutId);
    return true;
  };
  return {
    bullQueue: queue,
    enqueue,
    ensureQueued,
    async enqueueNow(optoutId) {
      const job = await queue.getJob(jobIdFor(optoutId));
      if (job && (await job.getState()) === 'delayed') await job.promote();
      else await ensureQueued(optoutId);
    },
    async depth() {
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      return { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), delayed: counts.delayed ?? 0, active: counts.active ?? 0 };
    },
    close: () => queue.close(),
  };
}
