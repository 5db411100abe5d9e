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
