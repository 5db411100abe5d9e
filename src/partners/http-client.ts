import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import got, { ReadError, RequestError, TimeoutError, type Got } from 'got';
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
  /** got with this partner's agents, headers and timeout. */
  readonly got: Got;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** Keep-alive connections, up to 256 to each host; one idle for a minute is closed (sooner if the partner's Keep-Alive hint says so). */
const AGENT_OPTIONS = { keepAlive: true, maxSockets: 256, maxFreeSockets: 256, timeout: 60_000 };

/**
 * One client per partner: its own keep-alive connections, timeout and headers, over got. Nothing is
 * retried (the opt-out queue retries with backoff; the WhatsApp path must answer RapidPro in time),
 * redirects are not followed, every status is an answer, and the body is read as it came (not
 * decompressed, so no Accept-Encoding is sent) and parsed here.
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
    got: got.extend({
      agent: { http: new http.Agent(AGENT_OPTIONS), https: new https.Agent(AGENT_OPTIONS) },
      headers: { 'user-agent': USER_AGENT, accept: 'application/json', ...options.headers },
      timeout: { request: options.timeoutMs },
      retry: { limit: 0 },
      followRedirect: false,
      throwHttpErrors: false,
      decompress: false,
    }),
    logger: options.logger.child({ partner: options.partner }),
    metrics: options.metrics,
  };
}

/** Why a request got no answer, as a PartnerUnreachable; anything else is a defect and is thrown as it is. */
function noAnswer(error: unknown): Error {
  if (!(error instanceof RequestError)) return error as Error;
  if (error instanceof TimeoutError) return new PartnerUnreachable('ETIMEDOUT', { cause: error });
  // A connection closed before the whole answer came is a reset, whatever got calls it.
  if (error instanceof ReadError) return new PartnerUnreachable('ECONNRESET', { cause: error });
  // Bytes that are not an HTTP answer (a malformed status line, say): Node's parser codes these HPE_….
  if (error.code.startsWith('HPE_')) return new PartnerUnreachable('EPROTO', { cause: error });
  // got's and Node's own ERR_ codes are a request built wrongly; a TLS failure is the partner's.
  const isDefect = error.code.startsWith('ERR_') && !/^ERR_(TLS|SSL)_/.test(error.code);
  return isDefect ? error : new PartnerUnreachable(error.code, { cause: error });
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
  // got has no size limit of its own: the request is cancelled once the answer says or shows it is too large.
  const cancel = new AbortController();
  const started = performance.now();
  let status: number;
  let headers: http.IncomingHttpHeaders;
  let text: string;
  try {
    const response = await client.got(request.url, {
      method: request.method,
      json: request.json,
      headers: request.headers,
      responseType: 'buffer',
      signal: cancel.signal,
      ...(request.timeoutMs === undefined ? {} : { timeout: { request: request.timeoutMs } }),
    })
      // got handles one error of the native request ('once'); a second one (a timeout's and the socket's) would
      // be an uncaught exception that ends the process (got issues #631, #1460). got has already failed the call.
      .on('request', (clientRequest: http.ClientRequest) => clientRequest.on('error', () => undefined))
      .on('downloadProgress', ({ transferred, total }) => {
        if (transferred > ANSWER_LIMIT_BYTES || (total ?? 0) > ANSWER_LIMIT_BYTES) cancel.abort();
      });
    status = response.statusCode;
    headers = response.headers;
    text = new TextDecoder().decode(response.body);
  } catch (error) {
    const failure = cancel.signal.aborted
      ? new AnswerTooLarge((error as RequestError).response?.statusCode)
      : noAnswer(error);
    const code = failure instanceof PartnerUnreachable ? failure.code : undefined;
    if (code !== undefined || failure instanceof AnswerTooLarge) observe(client, partnerOutcome(undefined, code), started);
    throw failure;
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
