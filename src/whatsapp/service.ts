import type { Metrics } from '../ops/metrics';
import { createHash, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AppError } from '../errors';
import { createInFlight } from '../shared/in-flight';
import { toStorableText } from '../shared/text';
import type { Logger } from '../ops/logger';
import { maskPhone, maskPhonesIn } from '../shared/phone';
import { bodyReportsError, isSuccessStatus } from '../partners/failures';
import { ANSWER_LIMIT_BYTES } from '../partners/http-client';
import type { WhatsappClient, WhatsappResult } from '../partners/whatsapp';
import type { TemplateRequest } from './schemas';
import type { WhatsappApi, WhatsappSendRecord, WhatsappSendStore } from './store';

/** What RapidPro is answered with, its body already serialized: a body that cannot be is not sent. */
export interface ProxyAnswer {
  status: number;
  /** The body, as JSON text. */
  json: string;
  headers: Record<string, string>;
}

/** An answer before its body is serialized. */
type Answer = Omit<ProxyAnswer, 'json'> & { body: unknown };

export interface SendContext {
  apiClientId: string;
  simulated: boolean;
  /** The request's logger, so that the send's log lines carry its request id. */
  log: Logger;
}

const ERROR_LIMIT = 500;
/** WhatsApp's message ids are some 60 characters; a longer one is not an id worth keeping whole. */
const MESSAGE_ID_LIMIT = 256;
/** Not read, so neither passed on nor known to report a message id: the flow takes its Failure branch. */
const UPSTREAM_ANSWER_TOO_LARGE = `upstream answer larger than ${ANSWER_LIMIT_BYTES} bytes`;
/** Read, but not serializable again (JSON nested deeper than JSON.stringify's stack): the flow takes its Failure branch. */
const UPSTREAM_ANSWER_UNPASSABLE = 'upstream answer cannot be passed on';
/**
 * Rows waiting for PostgreSQL (while it is away, say) beyond which a send goes unrecorded, with an
 * error logged, rather than memory growing for as long as the outage lasts.
 */
export const MAX_UNRECORDED_SENDS = 10_000;

const isJsonObject = (body: unknown): body is object => typeof body === 'object' && body !== null;

/**
 * The contract's answer for a result: the upstream's status and JSON body unchanged, except a 2xx
 * that reports an error (502), no answer in time (504), no connection (502), and an invalid contact (404).
 */
function answerFor(result: WhatsappResult): Answer {
  switch (result.kind) {
    case 'timeout':
      return { status: 504, body: { error: 'upstream timeout' }, headers: {} };
    case 'unreachable':
      return { status: 502, body: { error: 'upstream unavailable' }, headers: {} };
    case 'too-large':
      return { status: 502, body: { error: UPSTREAM_ANSWER_TOO_LARGE }, headers: {} };
    case 'not-a-contact':
      return { status: 404, body: { error: 'not a WhatsApp contact' }, headers: {} };
    case 'contact-unconfirmed':
      return { status: 502, body: { error: 'contact check inconclusive' }, headers: {} };
    case 'answered': {
      const { status, body, headers } = result.answer;
      const retryAfter = headers['retry-after'];
      const passed: Record<string, string> = retryAfter ? { 'retry-after': retryAfter } : {};
      // A body that is not JSON (a proxy's HTML error page, say) cannot be passed on as JSON.
      if (!isJsonObject(body)) {
        const error = `upstream answered HTTP ${status} without a JSON object`;
        return { status: isSuccessStatus(status) ? 502 : status, body: { error }, headers: passed };
      }
      return { status: isSuccessStatus(status) && bodyReportsError(body) ? 502 : status, body, headers: passed };
    }
  }
}

const describe = (...parts: unknown[]) =>
  parts
    .filter((part) => part !== undefined && part !== null && part !== '')
    .map(String)
    .join(' ');

/** The upstream's own words for a failure: Cloud `{error: {code, message}}`, on-prem `{errors: [{code, title, details}]}`. */
function upstreamError(body: unknown): string | undefined {
  if (!isJsonObject(body)) return undefined;
  const { error, errors } = body as { error?: unknown; errors?: unknown };
  const parts: string[] = [];
  if (typeof error === 'string') parts.push(error);
  if (isJsonObject(error)) {
    const cloud = error as { code?: unknown; message?: unknown; error_data?: { details?: unknown } };
    parts.push(describe(cloud.code, cloud.message, cloud.error_data?.details));
  }
  if (Array.isArray(errors)) {
    for (const entry of errors.filter(isJsonObject) as Array<{ code?: unknown; title?: unknown; details?: unknown }>) {
      parts.push(describe(entry.code, entry.title, entry.details));
    }
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** What the record says about a result besides the request itself. */
function outcomeOf(result: WhatsappResult, answer: Answer): Pick<WhatsappSendRecord, 'upstreamStatus' | 'messageId' | 'error'> {
  if (result.kind === 'timeout' || result.kind === 'unreachable') {
    const error = result.kind === 'timeout' ? 'upstream timeout' : `upstream unavailable (${result.code})`;
    return { upstreamStatus: null, messageId: null, error };
  }
  if (result.kind === 'too-large') return { upstreamStatus: result.status ?? null, messageId: null, error: UPSTREAM_ANSWER_TOO_LARGE };
  const upstream = result.answer;
  if (isSuccessStatus(answer.status)) {
    const id = (upstream.body as { messages?: Array<{ id?: unknown }> }).messages?.[0]?.id;
    // The upstream's text, stored as it can be: a NUL in it would cost the whole record.
    return { upstreamStatus: upstream.status, messageId: typeof id === 'string' ? toStorableText(id.slice(0, MESSAGE_ID_LIMIT)) : null, error: null };
  }
  const fallback = (answer.body as { error?: unknown }).error;
  const error = upstreamError(upstream.body) ?? (typeof fallback === 'string' ? fallback : `HTTP ${upstream.status}`);
  return { upstreamStatus: upstream.status, messageId: null, error: toStorableText(error.slice(0, ERROR_LIMIT)) };
}

/** What the simulator gets: the shape of the upstream's success, marked simulated. */
function simulatedAnswer(api: WhatsappApi, request: TemplateRequest): ProxyAnswer {
  const messages = [{ id: `simulated-${randomUUID()}` }];
  const body =
    api === 'cloud'
      ? { messaging_product: 'whatsapp', contacts: [{ input: request.to, wa_id: request.to.slice(1) }], messages, simulated: true }
      : { messages, simulated: true };
  return { status: 200, json: JSON.stringify(body), headers: {} };
}

export type Outcome = ReturnType<typeof outcomeOf>;

/**
 * RapidPro's answer and the record's outcome for a result. The body is serialized here, so that one
 * that cannot be (the message may well have gone) is answered 502 and recorded as such, not a 500.
 */
export function conclude(result: WhatsappResult): { answer: ProxyAnswer; outcome: Outcome } {
  const { body, ...answer } = answerFor(result);
  let json: string;
  try {
    json = JSON.stringify(body);
  } catch {
    const upstreamStatus = result.kind === 'answered' ? result.answer.status : null;
    return {
      answer: { status: 502, json: JSON.stringify({ error: UPSTREAM_ANSWER_UNPASSABLE }), headers: {} },
      outcome: { upstreamStatus, messageId: null, error: UPSTREAM_ANSWER_UNPASSABLE },
    };
  }
  return { answer: { ...answer, json }, outcome: outcomeOf(result, { ...answer, body }) };
}

export function createWhatsappService(deps: {
  api: WhatsappApi;
  /** Undefined while settings are missing; `missing` names them. */
  client: WhatsappClient | undefined;
  missing: readonly string[];
  store: WhatsappSendStore;
  metrics: Metrics;
  /** MAX_UNRECORDED_SENDS unless given (tests). */
  maxUnrecorded?: number;
}) {
  const { api, client, store, metrics } = deps;
  const maxUnrecorded = deps.maxUnrecorded ?? MAX_UNRECORDED_SENDS;
  const notConfigured = `WhatsApp is not configured: set ${deps.missing.join(', ')}`;
  /** Rows not yet committed: shutdown waits for them. */
  const recording = createInFlight();

  // The database's messages may quote the row, phone number included: log only what identifies the failure.
  // A Cloud API message id is base64 of the recipient's number, so the log has its SHA-256, which still
  // matches the id in WhatsApp's status callbacks.
  const notRecorded = (send: WhatsappSendRecord, log: Logger, why: { errorName?: string; errorCode?: string; reason?: string }) =>
    log.error(
      { ...why, template: send.template, status: send.status, messageIdSha256: send.messageId && createHash('sha256').update(send.messageId).digest('hex') },
      'whatsapp send not recorded',
    );

  async function record(send: WhatsappSendRecord, log: Logger): Promise<void> {
    try {
      await store.record(send);
    } catch (error) {
      const { name, code } = error as { name?: string; code?: string };
      notRecorded(send, log, { errorName: name, errorCode: code });
    }
  }

  return {
    /**
     * Sends the template once and answers as the contract says. Every send is recorded, a simulated
     * one is not. The answer does not wait for the row: the message has gone (or not) whatever
     * PostgreSQL does, and a slow database must not turn a delivered message into a timeout in RapidPro.
     */
    async send(request: TemplateRequest, context: SendContext): Promise<ProxyAnswer> {
      if (!client) throw new AppError(503, notConfigured);
      if (context.simulated) return simulatedAnswer(api, request);

      const createdAt = new Date();
      const started = performance.now();
      const result = await client.sendTemplate(request);
      const durationMs = Math.round(performance.now() - started);
      const { answer, outcome } = conclude(result);
      metrics.whatsappSends.inc({ outcome: isSuccessStatus(answer.status) ? 'sent' : 'failed', status: String(answer.status) });
      if (outcome.error) {
        context.log.warn(
          { api, recipient: maskPhone(request.to), template: request.name, status: answer.status, error: maskPhonesIn(outcome.error), durationMs },
          'whatsapp template not sent',
        );
      }
      const send: WhatsappSendRecord = {
        createdAt,
        api,
        recipient: request.to,
        template: request.name,
        language: request.language,
        contactUuid: request.contactUuid,
        apiClientId: context.apiClientId,
        status: answer.status,
        durationMs,
        ...outcome,
      };
      if (recording.size >= maxUnrecorded) {
        notRecorded(send, context.log, { reason: `${maxUnrecorded} sends already wait for the database` });
        return answer;
      }
      void recording.track(record(send, context.log));
      return answer;
    },

    /** Resolves once every send answered so far is recorded (or its failure logged). */
    async settle(): Promise<void> {
      await recording.settle();
    },
  };
}

export type WhatsappService = ReturnType<typeof createWhatsappService>;
