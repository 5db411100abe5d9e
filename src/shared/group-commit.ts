/**
 * Group commit: each caller waits for its own item to be written, but items that arrive while every
 * write slot is busy go together in the next write. Under no load an item is written at once; under
 * load one statement carries many items instead of each paying for its own round trip.
 */
export interface GroupCommitOptions<Item, Result> {
  /** Writes a batch; answers one result per item, in order. */
  write(batch: Item[]): Promise<Result[]>;
  /**
   * Writes that may run at once. Two suit the hot paths: one write under way while the next batch
   * gathers. More make smaller batches, whose round trips cost more CPU than the waiting they save
   * (docs/PERFORMANCE.md).
   */
  slots: number;
  maxBatch: number;
  /**
   * How long the first item waits for others before its batch is written (none unless given). Only
   * for writes nobody waits on to answer a request: it saves round trips, and adds as much latency.
   */
  lingerMs?: number;
}

interface Waiting<Item, Result> {
  item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

export function createGroupCommit<Item, Result>(options: GroupCommitOptions<Item, Result>): (item: Item) => Promise<Result> {
  const waiting: Array<Waiting<Item, Result>> = [];
  let writing = 0;

  async function write(batch: Array<Waiting<Item, Result>>): Promise<void> {
    try {
      const results = await options.write(batch.map((entry) => entry.item));
      batch.forEach((entry, index) => entry.resolve(results[index]!));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // One bad item must not take the others down with it: write them one by one.
      await Promise.all(batch.map((entry) => write([entry])));
    }
  }

  async function drain(): Promise<void> {
    writing += 1;
    try {
      while (waiting.length > 0) await write(waiting.splice(0, options.maxBatch));
    } finally {
      writing -= 1;
    }
  }

  let lingering: NodeJS.Timeout | undefined;
  function startDrain(): void {
    clearTimeout(lingering);
    lingering = undefined;
    if (writing < options.slots) void drain();
  }

  return (item) =>
    new Promise<Result>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (writing >= options.slots) return;
      if (!options.lingerMs || waiting.length >= options.maxBatch) startDrain();
      else lingering ??= setTimeout(startDrain, options.lingerMs);
    });
}
