import type { Metrics } from '../ops/metrics';
import { createGroupCommit } from '../shared/group-commit';
import type { RowQueue } from '../jobs/queue';
import type { NewOptout, Optout, OptoutStore } from './store';

/**
 * A new opt-out (what the 202 shows of it), the earlier one it repeats, or nothing stored because its
 * client already used its idempotency key for another contact.
 */
export type AcceptResult =
  | { kind: 'created'; optout: Pick<Optout, 'id' | 'contactUuid' | 'status'> }
  | { kind: 'duplicate'; optout: Optout }
  | { kind: 'key-reused' };

/**
 * What the earlier opt-outs make of `item`: a repeat of its client's request with the same idempotency
 * key (for the same contact; for another contact the key is refused), else of its contact's queued
 * opt-out; undefined when it is new. Another client's keys are never looked at.
 */
export function judgeAgainst(
  item: Pick<NewOptout, 'apiClientId' | 'idempotencyKey' | 'contactUuid'>,
  candidates: Optout[],
): Exclude<AcceptResult, { kind: 'created' }> | undefined {
  const sameKey =
    item.idempotencyKey === null
      ? undefined
      : candidates.find((row) => row.apiClientId === item.apiClientId && row.idempotencyKey === item.idempotencyKey);
  if (sameKey) return sameKey.contactUuid === item.contactUuid ? { kind: 'duplicate', optout: sameKey } : { kind: 'key-reused' };
  const queued = candidates.find((row) => row.contactUuid === item.contactUuid && row.status === 'queued');
  return queued ? { kind: 'duplicate', optout: queued } : undefined;
}

/**
 * The items of a batch that repeat no earlier item of it (by its client's idempotency key, or contact):
 * one statement can judge those. What a repeat is answered depends on what the earlier item became (a
 * new queued opt-out, a duplicate of a row that may be submitted, or refused), so repeats wait for the
 * next statement, which sees it committed.
 */
function firstOccurrences(batch: NewOptout[]): NewOptout[] {
  const keys = new Set<string>();
  const contacts = new Set<string>();
  return batch.filter((item) => {
    const key = item.idempotencyKey === null ? undefined : `${item.apiClientId} ${item.idempotencyKey}`;
    const repeat = (key !== undefined && keys.has(key)) || contacts.has(item.contactUuid);
    if (key !== undefined) keys.add(key);
    contacts.add(item.contactUuid);
    return !repeat;
  });
}

/**
 * Commits webhooks' opt-outs and hands them to the queue, many at a time (group commit): one statement
 * that finds earlier duplicates and inserts the rest, one enqueue of all the new jobs, whatever the batch size.
 * Each caller still waits until its own opt-out is committed and handed over.
 */
export function createOptoutIntake(deps: { store: OptoutStore; queue: RowQueue; metrics: Metrics; slots?: number; maxBatch?: number }) {
  const { store, queue, metrics } = deps;

  async function write(batch: NewOptout[]): Promise<AcceptResult[]> {
    const leaders = firstOccurrences(batch);
    const results = new Map<NewOptout, AcceptResult>();

    const { earlier, inserted } = await store.insertUnlessDuplicate(leaders);
    const insertedById = new Map(inserted.map((row) => [row.id, row]));
    for (const item of leaders) {
      const row = insertedById.get(item.id);
      const judged = row ? { kind: 'created' as const, optout: row } : judgeAgainst(item, earlier);
      if (judged) results.set(item, judged);
      // Else neither inserted nor judged by what the statement saw: it lost a race with another writer
      // since the statement's snapshot, and is written again below with the repeats.
    }

    if (inserted.length > 0) {
      metrics.optoutsAccepted.inc(inserted.length);
      // Never fails the requests: while Redis is away the worker's reconciler queues them once it is back.
      await queue.handOver(inserted.map((row) => row.id));
    }

    // The repeats and the raced, in the order they came: the next statement sees what this one committed
    // (a raced item's winner is then an earlier row it sees; should that have left the queue meanwhile, the item goes in).
    const again = batch.filter((item) => !results.has(item));
    if (again.length > 0) {
      const answers = await write(again);
      again.forEach((item, index) => results.set(item, answers[index]!));
    }
    return batch.map((item) => results.get(item)!);
  }

  return createGroupCommit<NewOptout, AcceptResult>({ write, slots: deps.slots ?? 2, maxBatch: deps.maxBatch ?? 500 });
}
