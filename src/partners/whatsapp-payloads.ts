/**
 * The exact JSON the WhatsApp upstreams receive for a template message: Meta's Cloud API, and the
 * On-Premises API (which Turn speaks too). Pure functions; test/partners/whatsapp-payloads.test.ts
 * shows every shape.
 */

/** One template message as a flow asked for it. */
export interface TemplateMessage {
  /** E.164 with its leading `+`. */
  to: string;
  name: string;
  /** A WhatsApp language code: `en`, `pt_BR`. */
  language: string;
  /** The body's {{1}}, {{2}}, … in order; empty for a template without variables. */
  params: readonly string[];
}

/**
 * The body component carrying the parameters. A template without variables gets no `components`
 * at all: an empty body component makes both APIs complain about a parameter count mismatch.
 */
function bodyComponents(params: readonly string[]) {
  if (params.length === 0) return {};
  return { components: [{ type: 'body', parameters: params.map((text) => ({ type: 'text', text })) }] };
}

/** `POST {url}/{version}/{phone number id}/messages` on the Cloud API. */
export function buildCloudTemplateMessage(message: TemplateMessage) {
  return {
    messaging_product: 'whatsapp',
    to: message.to,
    type: 'template',
    template: { name: message.name, language: { code: message.language }, ...bodyComponents(message.params) },
  };
}

/** `POST {url}/v1/contacts` on the On-Premises API: waits for WhatsApp to say whether the number has an account. */
export function buildContactsCheck(to: string) {
  return { blocking: 'wait', contacts: [to] };
}

/** `POST {url}/v1/messages` on the On-Premises API, to the `wa_id` the contacts check returned or else the number. */
export function buildOnpremTemplateMessage(recipient: string, message: TemplateMessage, namespace: string) {
  return {
    to: recipient,
    type: 'template',
    template: {
      namespace,
      name: message.name,
      language: { policy: 'deterministic', code: message.language },
      ...bodyComponents(message.params),
    },
  };
}

export type ContactCheck =
  | { status: 'valid'; waId: string }
  | { status: 'invalid' }
  /** `pending` (Turn's sandbox, which may not look numbers up) or `processing`: no verdict, send to the number. */
  | { status: 'pending' }
  | { status: 'unknown' };

/**
 * What a successful contacts check says about the one number it was asked about. `unknown` covers
 * `failed` and answers without a usable `wa_id`.
 */
export function readContactCheck(body: unknown): ContactCheck {
  const contact = (body as { contacts?: Array<{ status?: unknown; wa_id?: unknown }> } | undefined)?.contacts?.[0];
  if (contact?.status === 'invalid') return { status: 'invalid' };
  if (contact?.status === 'pending' || contact?.status === 'processing') return { status: 'pending' };
  if (contact?.status === 'valid' && typeof contact.wa_id === 'string' && contact.wa_id !== '') {
    return { status: 'valid', waId: contact.wa_id };
  }
  return { status: 'unknown' };
}

/**
 * Meta's error codes for "too much, too fast" (a number's throughput, the spam rate limit, a
 * registration's): any HTTP status may carry them, so RapidPro's courier judges them by code, as
 * here. 131056 is the pair rate limit, one recipient's: the others hold for the whole number.
 */
const THROTTLING_ERROR_CODES = new Set([4, 80007, 130429, 131048, 131056, 133016]);
export const PAIR_RATE_LIMIT_CODE = 131056;
/** Meta's errors that pass with time (131053: WhatsApp could not fetch or upload a header's media). */
const RETRYABLE_ERROR_CODES = new Set([131053]);

/** The error code of a failure answer: Cloud API `{error: {code}}`, On-Premises API and Turn `{errors: [{code}]}`. */
export function readErrorCode(body: unknown): number | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { error, errors } = body as { error?: { code?: unknown }; errors?: Array<{ code?: unknown }> };
  const code = Array.isArray(errors) ? errors[0]?.code : error?.code;
  // The Graph API writes codes as numbers; some relays write them as text.
  const number = typeof code === 'string' && /^\d+$/.test(code) ? Number(code) : code;
  return typeof number === 'number' && Number.isInteger(number) ? number : undefined;
}

export const isThrottlingCode = (code: number | undefined) => code !== undefined && THROTTLING_ERROR_CODES.has(code);
export const isRetryableCode = (code: number | undefined) => code !== undefined && RETRYABLE_ERROR_CODES.has(code);
