import type { Logger } from '../ops/logger';
import { maskPhone } from '../shared/phone';
import type { Metrics } from '../ops/metrics';
import type { RapidProClient } from '../partners/rapidpro';
import type { OpenhimClient } from '../partners/openhim';
import type { Dhis2TrackerClient } from '../partners/dhis2';
import type { PartnerAnswer } from '../partners/http-client';
import { PartnerError } from '../partners/failures';
import {
  buildOpenhimOptout,
  buildTrackerPayload,
  eventUidFor,
  MissingContactData,
  type SwtCodes,
  type TrackerSettings,
} from '../partners/nurseconnect-payloads';
import type { CountryCode } from '../shared/phone';
import { needsContactLookup, payloadFacts, resolveContactDetails, type ContactDetails, type OptoutFacts } from './submission';
import { retryDelayMs, type RetryPolicy } from '../jobs/retry-policy';
import { recordWhileLeased, untilLeaseEnds } from '../jobs/lease';
import type { RetryOutcome } from '../jobs/worker';
import type { AttemptRecord, AttemptResult, Optout, OptoutStore } from './store';

export type Upstream =
  | { mode: 'openhim'; client: OpenhimClient; swt: SwtCodes }
  | { mode: 'tracker'; client: Dhis2TrackerClient; settings: TrackerSettings };

/** What one try did, and what the queue should do next. */
export type SubmitOutcome =
  | { kind: 'finished'; status: 'submitted' | 'failed' }
  /** Nothing to do: the opt-out is gone, or no longer queued (submitted, failed or cancelled). */
  | { kind: 'skipped' }
  | RetryOutcome;

export interface OptoutSubmitter {
  submit(optoutId: string): Promise<SubmitOutcome>;
}

const LAST_ERROR_EXCERPT = 300;

function describeFailure(error: PartnerError): string {
  const excerpt = error.answer?.excerpt.slice(0, LAST_ERROR_EXCERPT);
  return excerpt ? `${error.message}: ${excerpt}` : error.message;
}

/**
 * An error of our own (a defect) counts as a transient attempt, towards the limit: thrown to BullMQ it
 * would leave staff no attempt to see, and the reconciler would queue the opt-out again for ever. Its
 * message may quote partner data, so the attempt names only its kind; the log has the whole error.
 */
function unexpectedFailure(partner: string, error: unknown, log: Logger): PartnerError {
  log.error({ err: error, partner }, 'opt-out try failed unexpectedly: recorded as a transient attempt');
  const kind = error instanceof Error ? error.name : typeof error;
  return new PartnerError(partner, 'transient', `companion error (${kind}) while working with ${partner}: see the worker's log`);
}

function factsOf(optout: Optout): OptoutFacts {
  return {
    id: optout.id,
    contactUuid: optout.contactUuid,
    contactUrn: optout.contactUrn,
    contactFields: (optout.contactFields as Record<string, unknown> | null) ?? null,
    reasonCategory: optout.reasonCategory,
    reasonValue: optout.reasonValue,
    createdAt: optout.createdAt,
  };
}

/** A reason as the log may hold it: free text, so any phone number in it is masked. */
function loggableReason(reason: string): string {
  return reason.slice(0, 200).replace(/\+?\d[\d\s().-]{5,}\d/g, (number) => maskPhone(number) ?? '');
}

/** How long an opt-out that needs RapidPro waits before the worker looks at it again while RapidPro is not configured. */
const WAIT_FOR_RAPIDPRO_BACKOFFS = 10;

/**
 * One try at an opt-out: find the contact (in the webhook or RapidPro), send it upstream, record the
 * attempt, and say whether and when to try again. Knows nothing of BullMQ: the worker wraps it.
 */
export function createOptoutSubmitter(deps: {
  store: OptoutStore;
  /** Undefined while RAPIDPRO_URL or RAPIDPRO_TOKEN is unset: opt-outs that need a look-up wait. */
  rapidpro: RapidProClient | undefined;
  upstream: Upstream;
  policy: RetryPolicy;
  /** How long one try may hold an opt-out; past it another worker may take over. */
  leaseMs: number;
  /** DEFAULT_COUNTRY: how the contact's numbers written without their country code are read. */
  defaultCountry: CountryCode;
  logger: Logger;
  metrics: Metrics;
}): OptoutSubmitter {
  const { store, rapidpro, upstream, policy, defaultCountry, logger, metrics } = deps;
  const upstreamName = upstream.mode === 'openhim' ? 'openhim' : 'dhis2';

  async function send(optoutId: string, details: ContactDetails): Promise<PartnerAnswer> {
    const facts = payloadFacts(optoutId, details);
    if (upstream.mode === 'openhim') return upstream.client.submitOptout(buildOpenhimOptout(facts, upstream.swt));
    const valueTypes = await upstream.client.dataElementTypes(Object.values(upstream.settings.dataElements));
    return upstream.client.importTracker(buildTrackerPayload(facts, upstream.settings, valueTypes), eventUidFor(optoutId));
  }

  /** Without RapidPro, an opt-out that needs a look-up is left queued, unclaimed and with no attempt, until it is configured. */
  async function waitsForRapidPro(optoutId: string): Promise<SubmitOutcome | undefined> {
    if (rapidpro) return undefined;
    const optout = await store.findById(optoutId);
    if (optout?.status !== 'queued' || !needsContactLookup(factsOf(optout))) return undefined;
    logger.warn({ optoutId }, 'opt-out needs its contact from RapidPro, but RAPIDPRO_URL/RAPIDPRO_TOKEN are unset: it waits in the queue');
    const delayMs = Math.min(policy.maxBackoffMs, WAIT_FOR_RAPIDPRO_BACKOFFS * policy.backoffMs);
    return { kind: 'retry', delayMs, reason: 'waiting for RAPIDPRO_URL/RAPIDPRO_TOKEN' };
  }

  return {
    async submit(optoutId) {
      const waiting = await waitsForRapidPro(optoutId);
      if (waiting) return waiting;
      const now = Date.now();
      // The lease's end by this process's clock (for recordWhileLeased): counted from before the claim, it never outlasts PostgreSQL's.
      const leaseEnd = now + deps.leaseMs;
      const optout = await store.claim(optoutId, deps.leaseMs);
      if (!optout) {
        const current = await store.findById(optoutId);
        if (current?.status !== 'queued') return { kind: 'skipped' };
        const delayMs = untilLeaseEnds(current.leaseUntil, deps.leaseMs, now);
        logger.info({ optoutId, delayMs }, 'opt-out held by another worker: trying again when its lease ends');
        return { kind: 'retry', delayMs, reason: 'another worker holds this opt-out' };
      }

      const number = optout.attempts + 1;
      const startedAt = new Date();
      let partner = 'rapidpro';
      const log = logger.child({ optoutId, attempt: number });
      const finish = async (
        outcome: AttemptRecord['outcome'],
        result: AttemptResult,
        answer?: Pick<PartnerAnswer, 'status' | 'excerpt'>,
      ) => {
        const attempt = {
          number,
          partner,
          startedAt,
          durationMs: Date.now() - startedAt.getTime(),
          outcome,
          httpStatus: answer?.status ?? null,
          response: answer?.excerpt ?? null,
          error: result.lastError,
        };
        await recordWhileLeased(() => store.recordAttempt(optoutId, attempt, result), leaseEnd, log);
      };

      let details: ContactDetails;
      let answer: PartnerAnswer;
      try {
        const facts = factsOf(optout);
        let contact;
        if (needsContactLookup(facts)) {
          // There is a client: waitsForRapidPro held back this opt-out otherwise, and its contact fields never change.
          contact = await rapidpro!.getContact(optout.contactUuid);
          if (!contact) throw new MissingContactData(`contact ${optout.contactUuid} was not found in RapidPro`);
        }
        details = resolveContactDetails(facts, contact, defaultCountry);
        if (details.reason.unmapped !== undefined) {
          log.warn({ reason: loggableReason(details.reason.unmapped) }, 'opt-out reason maps to no NurseConnect reason: sent as unknown (6)');
        }
        partner = upstreamName;
        answer = await send(optoutId, details);
      } catch (error) {
        if (error instanceof MissingContactData) {
          await finish('permanent', { status: 'failed', lastError: error.message });
          metrics.optoutsFailed.inc({ reason: 'contact_data' });
          log.warn({ partner, reason: error.message }, 'opt-out failed: contact data missing');
          return { kind: 'finished', status: 'failed' };
        }
        const failure = error instanceof PartnerError ? error : unexpectedFailure(partner, error, log);
        const description = describeFailure(failure);
        // Staff retries start a fresh round: only the tries since the last one count, for the limit and the backoff.
        const tries = number - optout.priorAttempts;
        if (failure.kind === 'permanent' || tries >= policy.maxAttempts) {
          const lastError = failure.kind === 'permanent' ? description : `gave up after ${tries} attempts: ${description}`;
          await finish(failure.kind, { status: 'failed', lastError }, failure.answer);
          metrics.optoutsFailed.inc({ reason: failure.kind === 'permanent' ? 'rejected' : 'attempts_exhausted' });
          log.warn({ partner, status: failure.answer?.status, kind: failure.kind }, 'opt-out failed');
          return { kind: 'finished', status: 'failed' };
        }
        // The row keeps when its next try is due, so that a Redis that loses the job cannot shorten the wait.
        const delayMs = retryDelayMs(tries, policy, failure.retryAfterMs);
        await finish('transient', { status: 'queued', lastError: description, retryInMs: delayMs }, failure.answer);
        metrics.optoutsRetried.inc();
        // A 429 says the partner is busy, not that this opt-out is wrong: every worker pauses for what
        // it asked (one base backoff without Retry-After), while this opt-out backs off on its own
        // curve, as for any transient failure, so that its attempts are not spent within seconds.
        const pauseAllMs = failure.answer?.status === 429 ? Math.min(policy.maxBackoffMs, failure.retryAfterMs ?? policy.backoffMs) : undefined;
        log.info({ partner, status: failure.answer?.status, delayMs, pauseAllMs }, 'opt-out will be retried');
        return { kind: 'retry', delayMs, reason: description, ...(pauseAllMs === undefined ? {} : { pauseAllMs }) };
      }
      // The partner accepted it: a write of that which fails (PostgreSQL away past the lease, a
      // deadlock, a statement timeout) is never recorded as a failure. The error goes to BullMQ, whose
      // next try (once the lease ends) sends it again under the same eid / event UID and records that.
      try {
        await finish('success', { status: 'submitted', lastError: null }, answer);
      } catch (error) {
        log.error({ err: error, partner, status: answer.status }, 'opt-out accepted but its attempt not written: it will be sent again');
        throw error;
      }
      metrics.optoutsSubmitted.inc();
      log.info({ partner, msisdn: maskPhone(details.msisdn), status: answer.status }, 'opt-out submitted');
      return { kind: 'finished', status: 'submitted' };
    },
  };
}
