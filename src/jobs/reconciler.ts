import { Prisma, type Database } from '../db/client';
import type { RedisConnection } from '../db/connections';
import { createRedisLock, type Lock } from '../db/redis-lock';
import type { Logger } from '../ops/logger';
import type { RowQueue } from './queue';

const PAGE_SIZE = 500;
/** This many rows in a row that cannot be checked means the queue itself is away: the run stops. */
const MAX_FAILURES_IN_A_ROW = 5;

/** A queued row for the reconciler, and how long until its next try is due (0: now). */
export interface QueuedRow {
  id: string;
  dueInMs: number;
}

/** The queued rows created before `createdBefore`, by id after `afterId`, at most `limit`. */
export type QueuedRows = (createdBefore: Date, afterId: string | undefined, limit: number) => Promise<QueuedRow[]>;

/**
 * The reconciler's read of a table of rows with `status`, `created_at` and `next_attempt_at`: one page
 * of its queued rows, each with what is left (by PostgreSQL's clock, the one that set it) of the wait
 * before its next try.
 */
export function queuedRowsIn(db: Database, table: 'optouts' | 'template_sends'): QueuedRows {
  return (createdBefore, afterId, limit) => db.$queryRaw<QueuedRow[]>`
    SELECT id, GREATEST(0, COALESCE(ceil(extract(epoch FROM next_attempt_at - now()) * 1000), 0))::int AS "dueInMs"
    FROM ${Prisma.raw(table)}
    WHERE status = 'queued' AND created_at < ${createdBefore.toISOString()}::timestamptz AND (${afterId ?? null}::uuid IS NULL OR id > ${afterId ?? null}::uuid)
    ORDER BY id LIMIT ${limit}`;
}

/** The lock every replica's reconciler of this queue takes on the queue's Redis; `ttlMs` frees it should its holder die. */
export function createReconcilerLock(redis: RedisConnection, queuePrefix: string, queue: RowQueue, ttlMs: number): Lock {
  return createRedisLock(redis, `${queuePrefix}:${queue.kind.queueName}:reconciler-lock`, ttlMs);
}

/**
 * PostgreSQL is the source of truth; Redis may lose jobs (flushed, restarted without persistence,
 * or a job's retries used up while the database was away). Every queued row older than `graceMs`
 * (time enough for the web process to enqueue it) that has no live job is enqueued again, delayed
 * by what is left of its wait for its next try (a partner's Retry-After, the backoff). Job ids come
 * from row ids, so this never doubles a job. One row that cannot be checked (a race with a worker,
 * say) does not stop the others.
 */
export async function reconcileQueue(deps: {
  queued: QueuedRows;
  queue: RowQueue;
  logger: Logger;
  graceMs: number;
  /** Shared by every replica: one runs, the others skip (no duplicate work, no thundering herd). */
  lock: Lock;
}): Promise<{ checked: number; enqueued: number; failed: number } | 'another replica is reconciling'> {
  return (await deps.lock.runExclusively(() => reconcile(deps))) ?? 'another replica is reconciling';
}

async function reconcile(deps: { queued: QueuedRows; queue: RowQueue; logger: Logger; graceMs: number }) {
  const { label } = deps.queue.kind;
  const createdBefore = new Date(Date.now() - deps.graceMs);
  let checked = 0;
  let enqueued = 0;
  let failed = 0;
  let failedInARow = 0;
  let afterId: string | undefined;
  for (;;) {
    const page = await deps.queued(createdBefore, afterId, PAGE_SIZE);
    for (const { id, dueInMs } of page) {
      try {
        if (await deps.queue.ensureQueued(id, dueInMs)) enqueued += 1;
        failedInARow = 0;
      } catch (error) {
        failed += 1;
        failedInARow += 1;
        if (failedInARow >= MAX_FAILURES_IN_A_ROW) throw new Error('reconciler stopped: the queue does not answer', { cause: error });
        deps.logger.warn({ err: error, id }, `reconciler could not check a ${label}; the next run will`);
      }
    }
    checked += page.length;
    afterId = page.at(-1)?.id;
    if (page.length < PAGE_SIZE) break;
  }
  if (enqueued > 0 || failed > 0) deps.logger.warn({ checked, enqueued, failed }, `reconciler enqueued queued ${label}s that had no job`);
  return { checked, enqueued, failed };
}
