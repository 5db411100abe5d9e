import type { Metrics } from '../ops/metrics';
import { createGroupCommit } from '../shared/group-commit';
import type { OptoutQueue } from './queue';
import type { NewOptout, Optout, OptoutStore } from './store';

/** A new opt-out (what the 202 shows of it), or the earlier one it repeats. */
export type AcceptResult =
  | { kind: 'created'; optout: Pick<Optout, 'id' | 'contactUuid' | 'status'> }
  | { kind: 'duplicate'; optout: Optout };

/** Inside a batch both kinds carry the whole row: a repeat of a new opt-out answers with it. */
type BatchResult = { kind: AcceptResult['kind']; optout: Optout };

/** The earlier opt-out that makes `item` a duplicate: the same idempotency key, else a queued one for its contact. */
export function earlierFor(item: Pick<NewOptout, 'idempotencyKey' | 'contactUuid'>, candidates: Optout[]): Optout | undefined {
  return (
    (item.idempotencyKey !== null ? candidates.find((row) => row.idempotencyKey === item.idempotencyKey) : undefined) ??
    candidates.find((row) => row.contactUuid === item.contactUuid && row.status === 'queued')
  );
}

/**
 * Which item of the batch each item repeats (its own index when it is the first): the same rules as
 * for the database, applied among webhooks that arrive together.
 */
function firstOccurrences(batch: NewOptout[]): number[] {
  const byKey = new Map<string, number>();
  const byContact = new Map<string, number>();
  return batch.map((item, index) => {
    const first = (item.idempotencyKey !== null ? byKey.get(item.idempotencyKey) : undefined) ?? byContact.get(item.contactUuid);
    if (first !== undefined) return first;
    if (item.idempotencyKey !== null) byKey.set(item.idempotencyKey, index);
    byContact.set(item.contactUuid, index);
    return index;
  });
}

/**
 * Commits webhooks' opt-outs and hands them to the queue, many at a time (group commit): one statement
 * that finds earlier duplicates and inserts the rest, one enqueue of all the new jobs, whatever the batch size.
 * Each caller still waits until its own opt-out is committed and handed over.
 */
export function createOptoutIntake(deps: { store: OptoutStore; queue: OptoutQueue; metrics: Metrics; slots?: number; maxBatch?: number }) {
  const { store, queue, metrics } = deps;

  async function write(batch: NewOptout[]): Promise<BatchResult[]> {
    const first = firstOccurrences(batch);
    const leaders = batch.filter((_item, index) => first[index] === index);
    const results = new Map<NewOptout, BatchResult>();

    const { earlier, inserted } = await store.insertUnlessDuplicate(leaders);
    const insertedById = new Map(inserted.map((row) => [row.id, row]));
    const raced: NewOptout[] = [];
    for (const item of leaders) {
      const row = insertedById.get(item.id);
      const duplicate = row ? undefined : earlierFor(item, earlier);
      if (row) results.set(item, { kind: 'created', optout: row });
      else if (duplicate) results.set(item, { kind: 'duplicate', optout: duplicate });
      else raced.push(item);
    }
    // Neither inserted nor a duplicate of what the statement saw: it lost a race with another writer
    // since the statement's snapshot. Written again, the winner is a duplicate the next statement sees
    // (or, should it have left the queue meanwhile, the item goes in after all).
    if (raced.length > 0) {
      const again = await write(raced);
      raced.forEach((item, index) => results.set(item, again[index]!));
    }

    if (inserted.length > 0) {
      metrics.optoutsAccepted.inc(inserted.length);
      // Never fails the requests: while Redis is away the queue keeps them for when it is back.
      await queue.handOver(inserted.map((row) => row.id));
    }
    return batch.map((item, index) => {
      if (first[index] === index) return results.get(item)!;
      return { kind: 'duplicate', optout: results.get(batch[first[index]!]!)!.optout };
    });
  }

  return createGroupCommit<NewOptout, AcceptResult>({ write, slots: deps.slots ?? 2, maxBatch: deps.maxBatch ?? 500 });
}
