import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { AnswerTooLarge, createPartnerHttp, isNetworkError, isTimeout, sendJson, type PartnerAnswer } from './http-client';
import { bodyReportsError, isSuccessStatus } from './failures';
import {
  buildCloudTemplateMessage,
  buildContactsCheck,
  buildOnpremTemplateMessage,
  readContactCheck,
  type TemplateMessage,
} from './whatsapp-payloads';

export type { TemplateMessage };

export type WhatsappSettings =
  | { api: 'cloud'; url: string; apiVersion: string; phoneNumberId: string; token: string; timeoutMs: number }
  | { api: 'onprem'; url: string; namespace: string; token: string; timeoutMs: number; contactCheck: boolean };

/** What became of one send. The proxy turns it into RapidPro's answer. */
export type WhatsappResult =
  /** The upstream answered (the send, or a contacts check that failed): any status, any body. */
  | { kind: 'answered'; answer: PartnerAnswer }
  /** On-prem: the contacts check says the number has no WhatsApp account; nothing was sent. */
  | { kind: 'not-a-contact'; answer: PartnerAnswer }
  /** On-prem: the contacts check succeeded but gave no usable verdict (`failed`, or `valid` without a `wa_id`); nothing was sent. */
  | { kind: 'contact-unconfirmed'; answer: PartnerAnswer }
  | { kind: 'timeout' }
  | { kind: 'unreachable'; code: string }
  /** An answer larger than the client reads (ANSWER_LIMIT_BYTES): its status, when it had one, but no body. */
  | { kind: 'too-large'; status: number | undefined };

type NoAnswer = Extract<WhatsappResult, { kind: 'timeout' | 'unreachable' | 'too-large' }>;

export interface WhatsappClient {
  /** Sends one template message, once: RapidPro is waiting, so nothing is retried. */
  sendTemplate(message: TemplateMessage): Promise<WhatsappResult>;
}

/** Sends one request; a request that got no answer becomes a result rather than an exception. */
async function exchange(send: () => Promise<PartnerAnswer>): Promise<PartnerAnswer | NoAnswer> {
  try {
    return await send();
  } catch (error) {
    if (isTimeout(error)) return { kind: 'timeout' };
    if (isNetworkError(error)) return { kind: 'unreachable', code: error.code };
    if (error instanceof AnswerTooLarge) return { kind: 'too-large', status: error.status };
    throw error;
  }
}

const answered = (answer: PartnerAnswer): boolean => isSuccessStatus(answer.status) && !bodyReportsError(answer.body);

export function createWhatsappClient(settings: WhatsappSettings, observers: { logger: Logger; metrics: Metrics }): WhatsappClient {
  const http = createPartnerHttp({
    partner: `whatsapp-${settings.api}`,
    timeoutMs: settings.timeoutMs,
    headers: { authorization: `Bearer ${settings.token}` },
    ...observers,
  });
  const base = settings.url.replace(/\/+$/, '');

  if (settings.api === 'cloud') {
    const url = `${base}/${settings.apiVersion}/${encodeURIComponent(settings.phoneNumberId)}/messages`;
    return {
      async sendTemplate(message) {
        const answer = await exchange(() => sendJson(http, { method: 'POST', url, json: buildCloudTemplateMessage(message) }));
        return 'kind' in answer ? answer : { kind: 'answered', answer };
      },
    };
  }

  const contactsUrl = `${base}/v1/contacts`;
  const messagesUrl = `${base}/v1/messages`;
  return {
    async sendTemplate(message) {
      // One budget for both calls: RapidPro waits for the whole exchange, not for each call.
      const deadline = Date.now() + settings.timeoutMs;
      const remaining = () => Math.max(1, deadline - Date.now());
      let recipient = message.to;
      if (settings.contactCheck) {
        const check = await exchange(() =>
          sendJson(http, { method: 'POST', url: contactsUrl, json: buildContactsCheck(message.to), timeoutMs: remaining() }),
        );
        if ('kind' in check) return check;
        if (!answered(check)) return { kind: 'answered', answer: check };
        const contact = readContactCheck(check.body);
        if (contact.status === 'invalid') return { kind: 'not-a-contact', answer: check };
        if (contact.status === 'unknown') return { kind: 'contact-unconfirmed', answer: check };
        if (contact.status === 'valid') recipient = contact.waId;
      }
      const json = buildOnpremTemplateMessage(recipient, message, settings.namespace);
      const sent = await exchange(() => sendJson(http, { method: 'POST', url: messagesUrl, json, timeoutMs: remaining() }));
      return 'kind' in sent ? sent : { kind: 'answered', answer: sent };
    },
  };
}
