import { recordWhileLeased, untilLeaseEnds } from '../jobs/lease';
import { retryDelayMs, type RetryPolicy } from '../jobs/retry-policy';
import type { RetryOutcome } from '../jobs/worker';
import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { isSuccessStatus, parseRetryAfter } from '../partners/failures';
import type { WhatsappClient, WhatsappResult } from '../partners/whatsapp';
import { isRetryableCode, isThrottlingCode, PAIR_RATE_LIMIT_CODE, readErrorCode } from '../partners/whatsapp-payloads';
import { maskPhone, maskPhonesIn } from '../shared/phone';
import { conclude } from './service';
import type { SendResult, TemplateSendStore } from './template-send-store';

/**
 * What an answer means for a queued send, as RapidPro's courier judges WhatsApp's answers: throttled
 * (429, or a rate-limit code under any status), worth another try (5xx, 408, no answer, a code that
 * passes with time), or final. `pausesAll`: the limit is the number's, not one recipient's.
 */
type Verdict = { kind: 'sent' } | { kind: 'throttled'; pausesAll: boolean } | { kind: 'transient' } | { kind: 'permanent' };

function verdictOf(result: WhatsappResult, answerStatus: number): Verdict {
  if (result.kind === 'not-a-contact') return { kind: 'permanent' };
  // Accepted, but its answer too large to read: the message went, its id is unknown. Sending it again would double it.
  if (result.kind === 'too-large' && result.status !== undefined && isSuccessStatus(result.status)) return { kind: 'sent' };
  if (result.kind !== 'answered') return { kind: 'transient' };
  if (isSuccessStatus(answerStatus)) return { kind: 'sent' };
  const { status, body } = result.answer;
  const code = readErrorCode(body);
  // A 429 pauses every worker whatever its code, as the contract says; the pair rate limit under another status, this send only.
  if (status === 429 || isThrottlingCode(code)) return { kind: 'throttled', pausesAll: status === 429 || code !== PAIR_RATE_LIMIT_CODE };
  if (status >= 500 || status === 408 || isRetryableCode(code)) return { kind: 'transient' };
  return { kind: 'permanent' };
}

/** What one try did, and what the queue should do next. */
export type SendOutcome =
  | { kind: 'finished'; status: 'sent' | 'failed' }
  /** Nothing to do: the send is gone, or no longer queued (sent, failed or cancelled). */
  | { kind: 'skipped' }
  | RetryOutcome;

/**
 * One try at a queued template send: mark it under way, send it, record what came of it, and say
 * whether and when to try again. WhatsApp has no idempotency key, so a send is repeated only when the
 * try was cut off (a crash, a database away past the lease) between the API's answer and its record.
 * Knows nothing of BullMQ: the worker wraps it.
 */
export function createTemplateSender(deps: {
  store: TemplateSendStore;
  client: WhatsappClient;
  policy: RetryPolicy;
  /** How long one try may hold a send; past it another worker may take it over. */
  leaseMs: number;
  logger: Logger;
  metrics: Metrics;
}) {
  const { store, client, policy, logger, metrics } = deps;

  return {
    async send(id: string): Promise<SendOutcome> {
      const now = Date.now();
      // The lease's end by this process's clock: counted from before the claim, it never outlasts PostgreSQL's.
      const leaseEnd = now + deps.leaseMs;
      const send = await store.claim(id, deps.leaseMs);
      if (!send) {
        const current = await store.findById(id);
        if (current?.status !== 'queued') return { kind: 'skipped' };
        const delayMs = untilLeaseEnds(current.leaseUntil, deps.leaseMs, now);
        logger.info({ sendId: id, delayMs }, 'template send under way in another worker: trying again when its lease ends');
        return { kind: 'retry', delayMs, reason: 'another worker has this send under way' };
      }

      const { request } = send;
      const tries = send.attempts - send.priorAttempts;
      const log = logger.child({ sendId: id, attempt: send.attempts });
      const result = await client.sendTemplate(request);
      const { answer, outcome } = conclude(result);
      const upstreamStatus = outcome.upstreamStatus;
      const lastError = outcome.error ?? `HTTP ${answer.status}`;

      const verdict = verdictOf(result, answer.status);
      let recorded: SendResult;
      let next: SendOutcome;
      if (verdict.kind === 'sent') {
        recorded = { status: 'sent', messageId: outcome.messageId, upstreamStatus };
        next = { kind: 'finished', status: 'sent' };
      } else if (verdict.kind !== 'permanent' && tries < policy.maxAttempts) {
        const retryAfterMs = parseRetryAfter(answer.headers['retry-after']);
        const delayMs = retryDelayMs(tries, policy, retryAfterMs);
        recorded = { status: 'queued', lastError, upstreamStatus, retryInMs: delayMs };
        // Throttling says WhatsApp is busy, not that this send is wrong: every worker pauses for what it
        // asked (one base backoff without Retry-After), while this send backs off on its own curve.
        const pausesAll = verdict.kind === 'throttled' && verdict.pausesAll;
        const pauseAllMs = pausesAll ? Math.min(policy.maxBackoffMs, retryAfterMs ?? policy.backoffMs) : undefined;
        next = { kind: 'retry', delayMs, reason: lastError, ...(pauseAllMs === undefined ? {} : { pauseAllMs }) };
      } else {
        const gaveUp = verdict.kind !== 'permanent';
        recorded = { status: 'failed', lastError: gaveUp ? `gave up after ${tries} attempts: ${lastError}` : lastError, upstreamStatus };
        next = { kind: 'finished', status: 'failed' };
      }

      try {
        await recordWhileLeased(() => store.record(id, recorded), leaseEnd, log);
      } catch (error) {
        // Unrecorded, the send is still queued: once its lease ends it is tried again, and may reach the recipient twice.
        log.error({ err: error, status: answer.status }, 'template send tried but its outcome not written: it will be tried again');
        throw error;
      }
      const facts = { recipient: maskPhone(request.to), template: request.name, status: answer.status };
      if (recorded.status === 'sent') {
        metrics.templateSends.inc({ outcome: 'sent' });
        log.info(facts, 'template send sent');
      } else if (recorded.status === 'queued') {
        metrics.templateSends.inc({ outcome: 'retried' });
        log.info({ ...facts, error: maskPhonesIn(lastError), delayMs: recorded.retryInMs }, 'template send will be tried again');
      } else {
        metrics.templateSends.inc({ outcome: 'failed' });
        log.warn({ ...facts, error: maskPhonesIn(recorded.lastError) }, 'template send failed');
      }
      return next;
    },
  };
}

export type TemplateSender = ReturnType<typeof createTemplateSender>;
