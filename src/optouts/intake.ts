import type { Metrics } from '../ops/metrics';
import { createGroupCommit } from '../shared/group-commit';
import type { OptoutQueue } from './queue';
import type { NewOptout, Optout, OptoutStore } from './store';

/** A new opt-out (what the 202 shows of it), or the earlier one it repeats. */
export type AcceptResult =
  | { kind: 'created'; optout: Pick<Optout, 'id' | 'contactUuid' | 'status'> }
  | { kind: 'duplicate'; optout: Optout };

/** The earlier opt-out that makes `item` a duplicate: the same idempotency key, else a queued one for its contact. */
export function earlierFor(item: Pick<NewOptout, 'idempotencyKey' | 'contactUuid'>, candidates: Optout[]): Optout | undefined {
  return (
    (item.idempotencyKey !== null ? candidates.find((row) => row.idempotencyKey === item.idempotencyKey) : undefined) ??
    candidates.find((row) => row.contactUuid === item.contactUuid && row.status === 'queued')
  );
}

/**
 * The items of a batch that repeat no earlier item of it (by idempotency key or contact): one statement
 * can judge those. What a repeat is answered depends on what the earlier item became (a new queued
 * opt-out, or a duplicate of a row that may be submitted, or of another contact's), so repeats wait
 * for the next statement, which sees it committed.
 */
function firstOccurrences(batch: NewOptout[]): NewOptout[] {
  const keys = new Set<string>();
  const contacts = new Set<string>();
  return batch.filter((item) => {
    const repeat = (item.idempotencyKey !== null && keys.has(item.idempotencyKey)) || contacts.has(item.contactUuid);
    if (item.idempotencyKey !== null) keys.add(item.idempotencyKey);
    contacts.add(item.contactUuid);
    return !repeat;
  });
}

/**
 * Commits webhooks' opt-outs and hands them to the queue, many at a time (group commit): one statement
 * that finds earlier duplicates and inserts the rest, one enqueue of all the new jobs, whatever the batch size.
 * Each caller still waits until its own opt-out is committed and handed over.
 */
export function createOptoutIntake(deps: { store: OptoutStore; queue: OptoutQueue; metrics: Metrics; slots?: number; maxBatch?: number }) {
  const { store, queue, metrics } = deps;

  async function write(batch: NewOptout[]): Promise<AcceptResult[]> {
    const leaders = firstOccurrences(batch);
    const results = new Map<NewOptout, AcceptResult>();

    const { earlier, inserted } = await store.insertUnlessDuplicate(leaders);
    const insertedById = new Map(inserted.map((row) => [row.id, row]));
    for (const item of leaders) {
      const row = insertedById.get(item.id);
      const duplicate = row ? undefined : earlierFor(item, earlier);
      if (row) results.set(item, { kind: 'created', optout: row });
      else if (duplicate) results.set(item, { kind: 'duplicate', optout: duplicate });
      // Else neither inserted nor a duplicate of what the statement saw: it lost a race with another
      // writer since the statement's snapshot, and is written again below with the repeats.
    }

    if (inserted.length > 0) {
      metrics.optoutsAccepted.inc(inserted.length);
      // Never fails the requests: while Redis is away the queue keeps them for when it is back.
      await queue.handOver(inserted.map((row) => row.id));
    }

    // The repeats and the raced, in the order they came: the next statement sees what this one committed
    // (a raced item's winner is then a duplicate it sees; should that have left the queue meanwhile, the item goes in).
    const again = batch.filter((item) => !results.has(item));
    if (again.length > 0) {
      const answers = await write(again);
      again.forEach((item, index) => results.set(item, answers[index]!));
    }
    return batch.map((item) => results.get(item)!);
  }

  return createGroupCommit<NewOptout, AcceptResult>({ write, slots: deps.slots ?? 2, maxBatch: deps.maxBatch ?? 500 });
}
