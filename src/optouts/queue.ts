import { Queue, type ConnectionOptions } from 'bullmq';

export const OPTOUT_QUEUE = 'optouts';
const SUBMIT_JOB = 'submit';
/** How long enqueueNow waits for a running job of the same opt-out to finish. */
const ACTIVE_WAIT_MS = 2000;

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
  /**
   * For staff retries: like ensureQueued, but a job waiting out a retry delay runs as soon as a worker
   * is free, and a job still running (it failed this opt-out a moment ago) is waited for briefly, so
   * that it does not swallow the new try. False when that job was still running: the reconciler then
   * enqueues the opt-out within a minute or two.
   */
  enqueueNow(optoutId: string): Promise<boolean>;
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
      let state = await job?.getState();
      for (let waited = 0; job && state === 'active' && waited < ACTIVE_WAIT_MS; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        state = await job.getState();
      }
      if (job && state === 'delayed') {
        await job.promote();
        return true;
      }
      return ensureQueued(optoutId);
    },
    async depth() {
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      return { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), delayed: counts.delayed ?? 0, active: counts.active ?? 0 };
    },
    close: () => queue.close(),
  };
}
