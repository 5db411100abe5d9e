import type { Logger } from '../ops/logger';
import type { OptoutQueue } from './queue';
import type { OptoutStore } from './store';

const PAGE_SIZE = 500;

/**
 * PostgreSQL is the source of truth; Redis may lose jobs. Every queued opt-out older than `graceMs`
 * (time enough for the web process to enqueue it) that has no live job is enqueued again. Job ids
 * come from opt-out ids, so this never doubles a job.
 */
export async function reconcileOptouts(deps: {
  store: OptoutStore;
  queue: OptoutQueue;
  logger: Logger;
  graceMs: number;
}): Promise<{ checked: number; enqueued: number }> {
  const createdBefore = new Date(Date.now() - deps.graceMs);
  let checked = 0;
  let enqueued = 0;
  let afterId: string | undefined;
  for (;;) {
    const ids = await deps.store.queuedIds(createdBefore, afterId, PAGE_SIZE);
    for (const id of ids) {
      if (await deps.queue.ensureQueued(id)) enqueued += 1;
    }
    checked += ids.length;
    afterId = ids.at(-1);
    if (ids.length < PAGE_SIZE) break;
  }
  if (enqueued > 0) deps.logger.warn({ checked, enqueued }, 'reconciler enqueued queued opt-outs that had no job');
  return { checked, enqueued };
}
