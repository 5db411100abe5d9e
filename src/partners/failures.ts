import type { PartnerAnswer } from './http-client';
import { AnswerTooLarge, isNetworkError, isTimeout } from './http-client';

/** transient: worth trying again later; permanent: trying again cannot help. */
export type FailureKind = 'transient' | 'permanent';

/** A partner call that did not succeed, classified so that the caller knows whether to retry. */
export class PartnerError extends Error {
  constructor(
    readonly partner: string,
    readonly kind: FailureKind,
    message: string,
    readonly answer?: Pick<PartnerAnswer, 'status' | 'excerpt' | 'body'>,
    /** From the partner's Retry-After header, when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'PartnerError';
  }
}

/** The contract's transient answers besides 5xx: every other 4xx is permanent. */
const TRANSIENT_STATUSES = new Set([408, 429]);

export function isSuccessStatus(status: number): boolean {
  return status >= 200 && status < 300;
}

export function isTransientStatus(status: number): boolean {
  return status >= 500 || TRANSIENT_STATUSES.has(status);
}

/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * An error reported inside a 2xx body: a DHIS2 import summary with status ERROR, or an `error(s)`
 * field that holds something (`"error": null` and `"errors": []` are APIs saying "none").
 */
export function bodyReportsError(body: unknown): boolean {
  if (!body || typeof body !== 'object') return false;
  const record = body as Record<string, unknown>;
  return record.status === 'ERROR' || (record.error !== undefined && record.error !== null) || (Array.isArray(record.errors) && record.errors.length > 0);
}

/**
 * True when the answer's body is a JSON object or array, whatever its Content-Type says: mediators and
 * OpenHIM label JSON variously (text/plain, application/json+openhim), and a page of HTML never parses.
 */
export function isJsonAnswer(answer: Pick<PartnerAnswer, 'body'>): boolean {
  return typeof answer.body === 'object' && answer.body !== null;
}

/** Turns a non-successful answer into a PartnerError; returns undefined when the answer is a success. */
export function failureFromAnswer(partner: string, answer: PartnerAnswer): PartnerError | undefined {
  const { status } = answer;
  if (isSuccessStatus(status)) {
    return bodyReportsError(answer.body)
      ? new PartnerError(partner, 'permanent', `${partner} answered ${status} but reported an error`, answer)
      : undefined;
  }
  const kind: FailureKind = isTransientStatus(status) ? 'transient' : 'permanent';
  return new PartnerError(partner, kind, `${partner} answered HTTP ${status}`, answer, parseRetryAfter(answer.headers['retry-after']));
}

/**
 * An answer too large to read counts by its status. A 2xx stays transient: its body cannot confirm the
 * success, and sending again is safe (the eid / event UID stays the same).
 */
function failureFromTooLargeAnswer(partner: string, error: AnswerTooLarge): PartnerError {
  const { status } = error;
  if (status === undefined) return new PartnerError(partner, 'transient', `${partner} sent an ${error.message}`);
  const kind: FailureKind = isSuccessStatus(status) || isTransientStatus(status) ? 'transient' : 'permanent';
  return new PartnerError(partner, kind, `${partner} answered HTTP ${status} with an ${error.message}`, { status, excerpt: '', body: undefined });
}

/** A request that never got a whole answer; only one too large to read may be a permanent failure. */
export function failureFromRequestError(partner: string, error: unknown): PartnerError {
  if (isTimeout(error)) return new PartnerError(partner, 'transient', `${partner} did not answer in time`);
  if (error instanceof AnswerTooLarge) return failureFromTooLargeAnswer(partner, error);
  if (isNetworkError(error)) return new PartnerError(partner, 'transient', `${partner} unreachable (${error.code})`);
  throw error;
}

/** Sends one request and returns the answer when it is a success; throws a classified PartnerError otherwise. */
export async function callPartner(partner: string, send: () => Promise<PartnerAnswer>): Promise<PartnerAnswer> {
  let answer: PartnerAnswer;
  try {
    answer = await send();
  } catch (error) {
    throw failureFromRequestError(partner, error);
  }
  const failure = failureFromAnswer(partner, answer);
  if (failure) throw failure;
  return answer;
}
