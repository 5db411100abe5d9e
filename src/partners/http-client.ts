import http from 'node:http';
import https from 'node:https';
import got, { type Got, RequestError } from 'got';
import type { Logger } from '../ops/logger';
import { toStorableText } from '../shared/text';
import { partnerOutcome, type Metrics } from '../ops/metrics';
import { VERSION } from '../version';

export const USER_AGENT = `companion/${VERSION}`;

/** A partner's answer, whatever its status: clients decide what it means. */
export interface PartnerAnswer {
  status: number;
  body: unknown;
  /** The first few KiB of the raw answer, kept on attempt records for staff to read. */
  excerpt: string;
  headers: http.IncomingHttpHeaders;
}

export const EXCERPT_LIMIT = 2000;
/** A partner answer is read into memory: one larger than this is cut off and counts as a failed call. */
export const ANSWER_LIMIT_BYTES = 1024 * 1024;

/** The partner's answer was cut off at ANSWER_LIMIT_BYTES. */
export class AnswerTooLarge extends Error {
  constructor() {
    super(`answer larger than ${ANSWER_LIMIT_BYTES} bytes`);
    this.name = 'AnswerTooLarge';
  }
}

/**
 * One got instance per partner: its own timeout, keep-alive agents, user agent, and no retries
 * (the opt-out queue retries with backoff; the WhatsApp path must answer RapidPro in time).
 */
export function createPartnerHttp(options: {
  partner: string;
  timeoutMs: number;
  headers?: Record<string, string>;
  logger: Logger;
  metrics: Metrics;
}): Got {
  const log = options.logger.child({ partner: options.partner });
  const observe = (outcome: string, ms: number | undefined) =>
    options.metrics.partnerDuration.observe({ partner: options.partner, outcome }, (ms ?? 0) / 1000);
  return got.extend({
    timeout: { request: options.timeoutMs },
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: false,
    agent: {
      http: new http.Agent({ keepAlive: true, maxSockets: 256 }),
      https: new https.Agent({ keepAlive: true, maxSockets: 256 }),
    },
    headers: { 'user-agent': USER_AGENT, accept: 'application/json', ...options.headers },
    hooks: {
      afterResponse: [
        (response) => {
          observe(partnerOutcome(response.statusCode), response.timings?.phases.total);
          // Path only: query strings and bodies may carry phone numbers.
          log.debug(
            { method: response.request.options.method, path: response.requestUrl.pathname, status: response.statusCode, ms: response.timings?.phases.total },
            'partner answered',
          );
          return response;
        },
      ],
      beforeError: [
        (error) => {
          if (!error.response) observe(partnerOutcome(undefined, error.code), error.timings?.phases.total ?? undefined);
          return error;
        },
      ],
    },
  });
}

/** Sends a JSON request and reads the answer as a PartnerAnswer; network failures throw got's RequestError. */
export async function sendJson(
  client: Got,
  request: {
    method: 'GET' | 'POST';
    url: string;
    json?: unknown;
    headers?: Record<string, string>;
    signal?: AbortSignal;
    /** Replaces the client's timeout for this request (what is left of a deadline, say). */
    timeoutMs?: number;
  },
): Promise<PartnerAnswer> {
  const tooLarge = new AbortController();
  const pending = client(request.url, {
    method: request.method,
    json: request.json,
    headers: request.headers,
    signal: request.signal ? AbortSignal.any([request.signal, tooLarge.signal]) : tooLarge.signal,
    responseType: 'text',
    ...(request.timeoutMs === undefined ? {} : { timeout: { request: request.timeoutMs } }),
  });
  pending.on('downloadProgress', (progress: { transferred: number }) => {
    if (progress.transferred > ANSWER_LIMIT_BYTES) tooLarge.abort();
  });
  let response;
  try {
    response = await pending;
  } catch (error) {
    if (tooLarge.signal.aborted) throw new AnswerTooLarge();
    throw error;
  }
  const text = response.body;
  return {
    status: response.statusCode,
    body: parseJsonOrText(text),
    excerpt: toStorableText(text.slice(0, EXCERPT_LIMIT)),
    headers: response.headers,
  };
}

function parseJsonOrText(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** True for failures where the request never got an answer (refused, reset, DNS, timeout). */
export function isNetworkError(error: unknown): error is RequestError {
  return error instanceof RequestError;
}

export function isTimeout(error: unknown): boolean {
  return error instanceof RequestError && error.code === 'ETIMEDOUT';
}
