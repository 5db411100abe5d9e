/**
 * Work still under way that nobody awaits any more (a client that hung up, a row written after the
 * answer), kept so that shutdown can wait for it.
 */
export function createInFlight() {
  const running = new Set<Promise<unknown>>();
  return {
    /** Keeps `work` until it settles, and hands it back. */
    track<T>(work: Promise<T>): Promise<T> {
      running.add(work);
      void work.finally(() => running.delete(work)).catch(() => undefined);
      return work;
    },
    get size(): number {
      return running.size;
    },
    /** Resolves once everything tracked so far has settled, whether it succeeded or failed. */
    async settle(): Promise<void> {
      await Promise.allSettled([...running]);
    },
  };
}
