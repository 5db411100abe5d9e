export interface RetryPolicy {
  maxAttempts: number;
  /** The first retry's delay; each further retry doubles it. */
  backoffMs: number;
  maxBackoffMs: number;
}

/**
 * Exponential backoff with "equal jitter" (half fixed, half random) so that a burst of failures does
 * not come back as a burst, never sooner than the partner's Retry-After, never later than the cap.
 */
export function retryDelayMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'backoffMs' | 'maxBackoffMs'>,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  return Math.round(Math.min(policy.maxBackoffMs, Math.max(jittered, retryAfterMs ?? 0)));
}
