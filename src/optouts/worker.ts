import { Worker, type Job } from 'bullmq';
import { logConnectionErrors, type RedisConnection } from '../db/connections';
import type { Logger } from '../ops/logger';
import { FINISHED_JOB_RETENTION, OPTOUT_QUEUE, type SubmitJobData } from './queue';
import { retryDelayMs, type RetryPolicy } from './retry-policy';
import type { OptoutSubmitter, SubmitOutcome } from './submitter';

/** Thrown to BullMQ so that it schedules the next try after `delayMs` (see backoffStrategy below). */
export class RetryLater extends Error {
  constructor(
    readonly delayMs: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'RetryLater';
  }
}

/** A rate in jobs per second as BullMQ's limiter: whole jobs per window, the window stretched for rates below 1/s. */
export function limiterFor(perSecond: number): { max: number; duration: number } {
  return perSecond >= 1 ? { max: Math.floor(perSecond), duration: 1000 } : { max: 1, duration: Math.round(1000 / perSecond) };
}

/** Runs the submitter for each queued job, turning its "retry" outcomes into BullMQ's delayed retries. */
export function createOptoutWorker(deps: {
  submitter: OptoutSubmitter;
  connection: RedisConnection;
  prefix?: string;
  concurrency: number;
  /** Submissions per second across every worker sharing the queue; undefined for no limit. */
  rateLimitPerSecond?: number;
  /** How long a job stays with a worker that stopped renewing its lock (killed, frozen). */
  lockMs: number;
  policy: RetryPolicy;
  logger: Logger;
}): Worker<SubmitJobData, SubmitOutcome> {
  const worker = new Worker<SubmitJobData, SubmitOutcome>(
    OPTOUT_QUEUE,
    async (job: Job<SubmitJobData>) => {
      const outcome = await deps.submitter.submit(job.data.optoutId);
      if (outcome.kind !== 'retry') return outcome;
      // The partner said "too many": every worker on the queue pauses (BullMQ's limiter, in Redis).
      if (outcome.pauseAllMs !== undefined) await worker.rateLimit(outcome.pauseAllMs);
      throw new RetryLater(outcome.delayMs, outcome.reason);
    },
    {
      connection: deps.connection,
      prefix: deps.prefix,
      concurrency: deps.concurrency,
      // BullMQ keeps the limiter in Redis, so the limit holds across all worker processes. Without a
      // limiter BullMQ ignores worker.rateLimit() (the 429 pause), so "no limit" is a limit never reached.
      limiter: deps.rateLimitPerSecond ? limiterFor(deps.rateLimitPerSecond) : { max: Number.MAX_SAFE_INTEGER, duration: 1000 },
      // A killed worker's jobs go back to the queue once its lock lapses and a stalled-job check sees it.
      lockDuration: deps.lockMs,
      stalledInterval: deps.lockMs,
      // The database records each attempt; BullMQ's own records of finished jobs are kept short.
      ...FINISHED_JOB_RETENTION,
      settings: {
        // Errors other than RetryLater (the database was away, say) back off on the same curve.
        backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
          error instanceof RetryLater ? error.delayMs : retryDelayMs(attemptsMade, deps.policy),
      },
    },
  );
  worker.on('failed', (job, error) => {
    if (error instanceof RetryLater) return;
    deps.logger.error({ err: error, optoutId: job?.data.optoutId }, 'opt-out job failed unexpectedly');
  });
  worker.on('stalled', (jobId) =>
    deps.logger.warn({ jobId }, 'opt-out job stalled: its worker stopped renewing its lock; another worker takes it over'),
  );
  logConnectionErrors(worker, deps.logger, 'opt-out worker');
  return worker;
}
