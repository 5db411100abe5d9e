import { createGroupCommit } from '../../src/shared/group-commit';

describe('group commit', () => {
  it('writes at once when a slot is free, and groups what arrives while the slots are busy', async () => {
    const batches: number[][] = [];
    const submit = createGroupCommit<number, string>({
      slots: 1,
      maxBatch: 100,
      write: async (batch) => {
        batches.push(batch);
        await new Promise((resolve) => setTimeout(resolve, 20));
        return batch.map((item) => `written ${item}`);
      },
    });
    const results = await Promise.all(Array.from({ length: 50 }, (_, item) => submit(item)));
    expect(results).toEqual(Array.from({ length: 50 }, (_, item) => `written ${item}`));
    expect(batches[0]).toEqual([0]);
    expect(batches[1]).toEqual(Array.from({ length: 49 }, (_, index) => index + 1));
  });

  it('never writes more than maxBatch at once', async () => {
    const sizes: number[] = [];
    const submit = createGroupCommit<number, number>({
      slots: 1,
      maxBatch: 10,
      write: async (batch) => {
        sizes.push(batch.length);
        await new Promise((resolve) => setImmediate(resolve));
        return batch;
      },
    });
    await Promise.all(Array.from({ length: 35 }, (_, item) => submit(item)));
    expect(Math.max(...sizes)).toBe(10);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(35);
  });

  it('fails only the item that cannot be written, by writing a failed batch again one by one', async () => {
    const submit = createGroupCommit<number, number>({
      slots: 1,
      maxBatch: 100,
      write: async (batch) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (batch.includes(13)) throw new Error('13 is refused');
        return batch.map((item) => item * 2);
      },
    });
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, item) => submit(item)));
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([{ status: 'rejected', reason: new Error('13 is refused') }]);
    expect(outcomes[12]).toEqual({ status: 'fulfilled', value: 24 });
  });

  it('with a linger, waits that long for more items, unless a whole batch is there', async () => {
    const LINGER_MS = 1000;
    const batches: number[][] = [];
    const submit = createGroupCommit<number, number>({
      slots: 1,
      maxBatch: 5,
      lingerMs: LINGER_MS,
      write: async (batch) => {
        batches.push(batch);
        return batch;
      },
    });
    // A long linger, so that a busy machine's late timers cannot end it before the next items come.
    const first = submit(0);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(batches).toEqual([]);
    const rest = [1, 2].map((item) => submit(item));
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[0, 1, 2]]);

    const started = performance.now();
    await Promise.all([3, 4, 5, 6, 7].map((item) => submit(item)));
    // Written at once, not after the linger (half of it leaves a busy machine plenty of room).
    expect(performance.now() - started).toBeLessThan(LINGER_MS / 2);
    expect(batches).toEqual([[0, 1, 2], [3, 4, 5, 6, 7]]);
  });
});
