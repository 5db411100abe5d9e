import type { RedisConnection } from '../db/connections';
import { createRedisLock, type Lock } from '../db/redis-lock';
import type { Logger } from '../ops/logger';
import type { OptoutQueue } from './queue';
import type { OptoutStore } from './store';

const PAGE_SIZE = 500;

/** The lock every replica's reconciler takes on the queue's Redis; `ttlMs` frees it should its holder die. */
export function createReconcilerLock(redis: RedisConnection, queuePrefix: string, ttlMs: number): Lock {
  return createRedisLock(redis, `${queuePrefix}:reconciler-lock`, ttlMs);
}
/** This many opt-outs in a row that cannot be checked means the queue itself is away: the run stops. */
const MAX_FAILURES_IN_A_ROW = 5;

/**
 * PostgreSQL is the source of truth; Redis may lose jobs (flushed, restarted without persistence,
 * or a job's retries used up while the database was away). Every queued opt-out older than
 * `graceMs` (time enough for the web process to enqueue it) that has no live job is enqueued again,
 * delayed by what is left of its wait for its next try (a partner's Retry-After, the backoff).
 * Job ids come from opt-out ids, so this never doubles a job. One opt-out that cannot be checked
 * (a race with a worker, say) does not stop the others.
 */
export async function reconcileOptouts(deps: {
  store: OptoutStore;
  queue: OptoutQueue;
  logger: Logger;
  graceMs: number;
  /** Shared by every replica: one runs, the others skip (no duplicate work, no thundering herd). */
  lock: Lock;
}): Promise<{ checked: number; enqueued: number; failed: number } | 'another replica is reconciling'> {
  return (await deps.lock.runExclusively(() => reconcile(deps))) ?? 'another replica is reconciling';
}

async function reconcile(deps: { store: OptoutStore; queue: OptoutQueue; logger: Logger; graceMs: number }) {
  const createdBefore = new Date(Date.now() - deps.graceMs);
  let checked = 0;
  let enqueued = 0;
  let failed = 0;
  let failedInARow = 0;
  let afterId: string | undefined;
  for (;;) {
    const page = await deps.store.queuedOptouts(createdBefore, afterId, PAGE_SIZE);
    for (const { id, dueInMs } of page) {
      try {
        if (await deps.queue.ensureQueued(id, dueInMs)) enqueued += 1;
        failedInARow = 0;
      } catch (error) {
        failed += 1;
        failedInARow += 1;
        if (failedInARow >= MAX_FAILURES_IN_A_ROW) throw new Error('reconciler stopped: the queue does not answer', { cause: error });
        deps.logger.warn({ err: error, optoutId: id }, 'reconciler could not check an opt-out; the next run will');
      }
    }
    checked += page.length;
    afterId = page.at(-1)?.id;
    if (page.length < PAGE_SIZE) break;
  }
  if (enqueued > 0 || failed > 0) deps.logger.warn({ checked, enqueued, failed }, 'reconciler enqueued queued opt-outs that had no job');
  return { checked, enqueued, failed };
}
