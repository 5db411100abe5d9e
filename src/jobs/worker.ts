import { Worker, type Job } from 'bullmq';
import { logConnectionErrors, type RedisConnection } from '../db/connections';
import type { Logger } from '../ops/logger';
import { FINISHED_JOB_RETENTION, type RowJobData, type RowKind } from './queue';
import { retryDelayMs, type RetryPolicy } from './retry-policy';

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

/** Try this row again after delayMs. pauseAllMs when the partner answered 429: every worker on the queue stops sending for that long. */
export interface RetryOutcome {
  kind: 'retry';
  delayMs: number;
  reason: string;
  pauseAllMs?: number;
}

/** The row a job names; opt-out jobs queued by a release before src/jobs/ name it `optoutId`, and may still wait in Redis. */
const rowIdOf = (data: RowJobData & { optoutId?: string }): string => data.id ?? data.optoutId!;

/**
 * A rate in jobs per second as BullMQ's limiter, which lets `max` jobs start in each window of
 * `duration` ms, counted from the window's first job. Windows of about a tenth of a second (longer
 * below 10 jobs a second, one job each): in windows of a second each second's jobs start in one burst,
 * and two bursts can reach the partner within one second. The window is rounded up, so never faster
 * than the rate.
 */
export function limiterFor(perSecond: number): { max: number; duration: number } {
  const max = Math.max(1, Math.round(perSecond / 10));
  return { max, duration: Math.ceil((1000 * max) / perSecond) };
}

/** Runs `tryRow` for each queued job of `kind`, turning its "retry" outcomes into BullMQ's delayed retries. */
export function createRowWorker<Outcome extends { kind: string }>(deps: {
  kind: RowKind;
  /** One try at the row: what it came to, or a retry. */
  tryRow: (id: string) => Promise<Outcome | RetryOutcome>;
  connection: RedisConnection;
  prefix?: string;
  concurrency: number;
  /** Jobs per second across every worker sharing the queue; undefined for no limit. */
  rateLimitPerSecond?: number;
  /** How long a job stays with a worker that stopped renewing its lock (killed, frozen). */
  lockMs: number;
  policy: RetryPolicy;
  logger: Logger;
}): Worker<RowJobData, Outcome> {
  const { kind, logger } = deps;
  const worker = new Worker<RowJobData, Outcome>(
    kind.queueName,
    async (job: Job<RowJobData>) => {
      const outcome = await deps.tryRow(rowIdOf(job.data));
      if (outcome.kind !== 'retry') return outcome as Outcome;
      const retry = outcome as RetryOutcome;
      // The partner said "too many": every worker on the queue pauses (BullMQ's limiter, in Redis).
      // Redis refuses a pause of 0 ms (a Retry-After of 0, or a date gone by): there is nothing to wait out.
      if (retry.pauseAllMs !== undefined && retry.pauseAllMs > 0) await worker.rateLimit(retry.pauseAllMs);
      throw new RetryLater(retry.delayMs, retry.reason);
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
      // The database records each try; BullMQ's own records of finished jobs are kept short.
      ...FINISHED_JOB_RETENTION,
      settings: {
        // Errors other than RetryLater (the database was away, say) back off on the same curve.
        backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
          error instanceof RetryLater ? error.delayMs : retryDelayMs(attemptsMade, deps.policy),
      },
    },
  );
  worker.on('failed', (job, error) => {
    if (error instanceof RetryLater) {
      // BullMQ's tries can run out before the row's (waits for another worker's lease, say): the row stays queued.
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        logger.warn({ id: job.data.id, attempts: job.attemptsMade }, `${kind.label} job used up its tries while its row is queued: the reconciler queues it again`);
      }
      return;
    }
    logger.error({ err: error, id: job?.data.id }, `${kind.label} job failed unexpectedly`);
  });
  worker.on('stalled', (jobId) =>
    logger.warn({ jobId }, `${kind.label} job stalled: its worker stopped renewing its lock; another worker takes it over`),
  );
  logConnectionErrors(worker, logger, `${kind.label} worker`);
  return worker;
}
