import { randomUUID } from 'node:crypto';
import type { RedisConnection } from './connections';

/** Deletes the key only while it still holds our token: never another holder's lock after ours expired. */
const RELEASE_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

export interface Lock {
  /** Runs `work` if no other process holds the lock; undefined (without running it) when one does. */
  runExclusively<T>(work: () => Promise<T>): Promise<T | undefined>;
}

/**
 * A lock shared by every process on one Redis (SET NX with an expiry, released by token), for work
 * that one replica at a time should do. The expiry frees it should its holder die.
 */
export function createRedisLock(redis: RedisConnection, key: string, ttlMs: number): Lock {
  return {
    async runExclusively(work) {
      const token = randomUUID();
      if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return undefined;
      try {
        return await work();
      } finally {
        await redis.eval(RELEASE_SCRIPT, 1, key, token).catch(() => undefined);
      }
    },
  };
}
