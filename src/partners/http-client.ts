import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Agent, errors, request as undiciRequest } from 'undici';
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

/** The partner's answer was cut off at ANSWER_LIMIT_BYTES, while reading its body: `status` is the one it came with. */
export class AnswerTooLarge extends Error {
  constructor(readonly status?: number) {
    super(`answer larger than ${ANSWER_LIMIT_BYTES} bytes`);
    this.name = 'AnswerTooLarge';
  }
}

/** The partner gave no answer: refused, reset, unknown host, not HTTP (EPROTO), or no answer in time (code ETIMEDOUT). */
export class PartnerUnreachable extends Error {
  constructor(
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(`no answer (${code})`, options);
    this.name = 'PartnerUnreachable';
  }
}

/** One partner's HTTP client: see createPartnerHttp. */
export interface PartnerHttp {
  readonly partner: string;
  readonly agent: Agent;
  readonly headers: Record<string, string>;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * One client per partner: its own keep-alive connections, timeout and headers. Nothing is retried
 * (the opt-out queue retries with backoff; the WhatsApp path must answer RapidPro in time) and
 * redirects are not followed. undici rather than got: on the WhatsApp path got cost about 0.3 ms of
 * CPU per call, half of the proxy's (README, Performance).
 */
export function createPartnerHttp(options: {
  partner: string;
  timeoutMs: number;
  headers?: Record<string, string>;
  logger: Logger;
  metrics: Metrics;
}): PartnerHttp {
  return {
    partner: options.partner,
    // The partner's own Keep-Alive hint shortens the minute an idle connection is kept.
    agent: new Agent({ connections: 256, keepAliveTimeout: 60_000, connectTimeout: options.timeoutMs, maxResponseSize: ANSWER_LIMIT_BYTES }),
    headers: { 'user-agent': USER_AGENT, accept: 'application/json', ...options.headers },
    timeoutMs: options.timeoutMs,
    logger: options.logger.child({ partner: options.partner }),
    metrics: options.metrics,
  };
}

/** Why a request got no answer, as a PartnerUnreachable (or AnswerTooLarge); anything else is a defect and is thrown as it is. */
function noAnswer(error: unknown, deadline: AbortSignal, status: number | undefined): Error {
  if (deadline.aborted || error instanceof errors.ConnectTimeoutError) return new PartnerUnreachable('ETIMEDOUT', { cause: error });
  if (error instanceof errors.ResponseExceededMaxSizeError) return new AnswerTooLarge(status);
  // A connection closed before the whole answer came is a reset, whatever undici calls it.
  if (error instanceof errors.SocketError) return new PartnerUnreachable('ECONNRESET', { cause: error });
  // Bytes that are not an HTTP answer (a malformed status line, say): undici gives these no code.
  if (error instanceof errors.HTTPParserError) return new PartnerUnreachable('EPROTO', { cause: error });
  const code = (error as { code?: unknown } | null)?.code;
  const isDefect = error instanceof errors.InvalidArgumentError || typeof code !== 'string';
  return isDefect ? (error as Error) : new PartnerUnreachable(code, { cause: error });
}

/** Sends a JSON request and reads the answer as a PartnerAnswer; no answer throws PartnerUnreachable or AnswerTooLarge. */
export async function sendJson(
  client: PartnerHttp,
  request: {
    method: 'GET' | 'POST';
    url: string;
    json?: unknown;
    headers?: Record<string, string>;
    /** Replaces the client's timeout for this request (what is left of a deadline, say). */
    timeoutMs?: number;
  },
): Promise<PartnerAnswer> {
  // A timer cleared at the end rather than AbortSignal.timeout, whose timers would outlive their
  // calls by the whole timeout (thousands of them at once under load).
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), request.timeoutMs ?? client.timeoutMs);
  const body = request.json === undefined ? undefined : JSON.stringify(request.json);
  const started = performance.now();
  let status: number | undefined;
  let headers: http.IncomingHttpHeaders;
  let text: string;
  try {
    const response = await undiciRequest(request.url, {
      method: request.method,
      dispatcher: client.agent,
      headers: { ...client.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...request.headers },
      body,
      signal: deadline.signal,
    });
    status = response.statusCode;
    headers = response.headers;
    text = await response.body.text();
  } catch (error) {
    const failure = noAnswer(error, deadline.signal, status);
    const code = failure instanceof PartnerUnreachable ? failure.code : undefined;
    if (code !== undefined || failure instanceof AnswerTooLarge) observe(client, partnerOutcome(undefined, code), started);
    throw failure;
  } finally {
    clearTimeout(timer);
  }
  const ms = observe(client, partnerOutcome(status), started);
  if (client.logger.isLevelEnabled('debug')) {
    // Path only: query strings and bodies may carry phone numbers.
    client.logger.debug({ method: request.method, path: new URL(request.url).pathname, status, ms: Math.round(ms) }, 'partner answered');
  }
  return { status, body: parseJsonOrText(text), excerpt: toStorableText(text.slice(0, EXCERPT_LIMIT)), headers };
}

/** Records a call's duration under its outcome; returns it in milliseconds. */
function observe(client: PartnerHttp, outcome: string, started: number): number {
  const ms = performance.now() - started;
  client.metrics.partnerDuration.observe({ partner: client.partner, outcome }, ms / 1000);
  return ms;
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
export function isNetworkError(error: unknown): error is PartnerUnreachable {
  return error instanceof PartnerUnreachable;
}

export function isTimeout(error: unknown): boolean {
  return error instanceof PartnerUnreachable && error.code === 'ETIMEDOUT';
}
