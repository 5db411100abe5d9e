import { setTimeout } from 'node:timers/promises';
import { isDatabaseUnavailable } from '../db/client';
import type { Logger } from '../ops/logger';

/**
 * When a row another worker holds is worth trying again: once its lease ends (by this process's clock,
 * which may be off PostgreSQL's: no lease is longer than leaseMs), and not sooner than a second.
 */
export function untilLeaseEnds(leaseUntil: Date | null, leaseMs: number, now = Date.now()): number {
  return Math.max(1000, Math.min(leaseMs, (leaseUntil?.getTime() ?? now) - now));
}

/** First wait before writing a try's outcome again while PostgreSQL is away; it doubles up to RECORD_RETRY_MAX_MS. */
const RECORD_RETRY_FIRST_MS = 250;
const RECORD_RETRY_MAX_MS = 4000;

/**
 * Writes a try's outcome, trying again while PostgreSQL is away (restarting, say) for as long as the
 * row's lease lasts. An outcome that is not written is as good as unknown: the row would be sent
 * again once the lease ends, so a short outage must not lose it.
 */
export async function recordWhileLeased(write: () => Promise<void>, leaseEnd: number, log: Logger): Promise<void> {
  for (let waitMs = RECORD_RETRY_FIRST_MS; ; waitMs = Math.min(2 * waitMs, RECORD_RETRY_MAX_MS)) {
    try {
      await write();
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error) || Date.now() + waitMs >= leaseEnd) throw error;
      log.warn({ err: error, waitMs }, 'database unavailable: writing the outcome again shortly');
      await setTimeout(waitMs);
    }
  }
}
