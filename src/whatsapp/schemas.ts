import { z } from 'zod';
import { idempotencyKeySchema } from '../http/idempotency';
import { WHATSAPP_LANGUAGE } from '../config';
import { AppError } from '../errors';
import { readPhone, urnScheme, type CountryCode } from '../shared/phone';

/** More body variables than any approved template has; a longer list is a mistake in the flow. */
const MAX_PARAMS = 100;

export const templateName = z
  .string()
  .trim()
  .regex(/^[a-z0-9_]{1,512}$/, 'must be a template name: lowercase letters, digits and _')
  .describe('Name of an approved message template, e.g. `appointment_reminder`.');

/**
 * Empty means "not given": a flow's `?language=@fields.language` renders `language=` for a contact
 * without one, and a URL cannot leave the parameter out.
 */
export const languageCode = z
  .union([
    z.literal(''),
    z
      .string()
      .trim()
      .regex(WHATSAPP_LANGUAGE, 'must be a WhatsApp language code such as en or pt_BR'),
  ])
  .describe('Language of the template, e.g. `en`, `en_US`, `pt_BR`. Defaults to WHATSAPP_DEFAULT_LANGUAGE when absent or empty.');

/** RapidPro expressions may render numbers; WhatsApp wants text. An empty variable would be refused upstream. */
const paramText = z
  .union([z.string(), z.number()])
  .transform(String)
  .pipe(z.string().min(1, 'must not be empty').max(1024))
  .describe('The text of one body variable: {{1}}, {{2}}, … in order.');

export const paramList = z.array(paramText).max(MAX_PARAMS);

/** The body of `POST /api/v1/whatsapp/templates`: RapidPro's default Call Webhook body, optionally with `to` and `template`. */
export const templateBodySchema = z
  .object({
    to: z
      .union([z.string().max(64), z.number()])
      .transform(String)
      .nullish()
      .describe(
        'Recipient: +27820001001, 27820001001, whatsapp:27820001001, tel:+27820001001, or a number of DEFAULT_COUNTRY without its country code (0820001001). Defaults to contact.urn.',
      ),
    contact: z
      .object({
        uuid: z.uuid().nullish().describe('Recorded with the send.'),
        urn: z.string().max(255).nullish().describe('The recipient when `to` is absent: a whatsapp: or tel: URN.'),
      })
      .nullish()
      .describe("RapidPro's contact, as its default webhook body sends it."),
    template: z
      .object({
        name: templateName.optional(),
        language: languageCode.nullish(),
        params: paramList.nullish().describe('Body variables, in order. Leave out for a template without variables.'),
      })
      .nullish()
      .describe('The template; each field may come from the query string instead.'),
  })
  .meta({
    description: 'A template message to send. Everything else RapidPro sends is ignored.',
    examples: [
      {
        contact: { uuid: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f', name: 'Jane', urn: 'whatsapp:27820001001' },
        flow: { uuid: 'bead76f5-dac4-4c9d-996c-c62b326e8c0a', name: 'Appointment reminders' },
        template: { name: 'appointment_reminder', language: 'en', params: ['Jane', 'Monday 10:00'] },
      },
      { to: '+27820001001', template: { name: 'hello_world' } },
    ],
  });

/** `?template=NAME&language=en&param=A&param=B`: so that a flow can keep RapidPro's default body. */
export const templateQuerySchema = z
  .object({
    template: templateName.optional(),
    language: languageCode.optional(),
    param: z
      .union([paramText, paramList])
      .transform((value) => (Array.isArray(value) ? value : [value]))
      .optional()
      .describe('A body variable; repeat it for each, in order.'),
  })
  .describe('Template settings for flows that keep the default body; the body wins field by field.');

export type TemplateBody = z.output<typeof templateBodySchema>;
export type TemplateQuery = z.output<typeof templateQuerySchema>;

/** What a request that leaves them out gets: WHATSAPP_DEFAULT_LANGUAGE, and DEFAULT_COUNTRY for numbers without a country code. */
export interface RequestDefaults {
  language: string;
  country: CountryCode;
}

/** A template send, resolved from body, query and defaults. */
export interface TemplateRequest {
  /** E.164 with its leading `+`. */
  to: string;
  name: string;
  language: string;
  params: string[];
  contactUuid: string | null;
}

type Problem = { path: string; message: string };

/** The number in E.164, or a problem that says why not (without the number: problems are logged). */
function numberAt(path: string, value: string, country: CountryCode): string | Problem {
  const reading = readPhone(value, country);
  return reading.ok ? reading.e164 : { path, message: `${reading.reason}: give it in E.164 (+27820001001) or as a whatsapp: or tel: URN` };
}

function recipientOf(body: TemplateBody, country: CountryCode): string | Problem {
  if (body.to !== null && body.to !== undefined) return numberAt('to', body.to, country);
  const urn = body.contact?.urn;
  if (!urn) return { path: 'to', message: 'required: `to`, or contact.urn (a whatsapp: or tel: URN)' };
  if (!urnScheme(urn)) return { path: 'contact.urn', message: 'must be a whatsapp: or tel: URN when `to` is absent' };
  return numberAt('contact.urn', urn, country);
}

/** The send a request asks for, or the contract's 400 naming everything that is missing. */
export function templateRequestFrom(body: TemplateBody, query: TemplateQuery, defaults: RequestDefaults): TemplateRequest {
  const to = recipientOf(body, defaults.country);
  const name = body.template?.name ?? query.template;
  const problems: Problem[] = [
    ...(typeof to === 'string' ? [] : [to]),
    ...(name ? [] : [{ path: 'template.name', message: 'required: template.name in the body, or ?template= in the query' }]),
  ];
  if (typeof to !== 'string' || !name) throw AppError.invalidRequest(problems);
  return {
    to,
    name,
    language: body.template?.language || query.language || defaults.language,
    params: body.template?.params ?? query.param ?? [],
    contactUuid: body.contact?.uuid ?? null,
  };
}

export const templateSendIdempotencyKeySchema = idempotencyKeySchema(
  "Repeats of this API client's request with the same key answer 200 with the first send; the key with another request (recipient, template, language or parameters) is 422 (RapidPro: `@run.uuid`).",
);

const timestamp = z.iso.datetime({ offset: true });

export const templateSendAcceptedSchema = z
  .object({
    id: z.uuid(),
    status: z.literal('queued'),
    simulated: z.literal(true).optional().meta({ description: 'Present in simulation mode: nothing was stored or sent.' }),
  })
  .meta({ examples: [{ id: '8a6d0c1e-2f3b-4c5d-9e7f-0a1b2c3d4e5f', status: 'queued' }] });

export const templateSendRecordSchema = z
  .object({
    id: z.uuid(),
    template: z.string(),
    language: z.string(),
    status: z.enum(['queued', 'sent', 'failed', 'cancelled']),
    attempts: z.int().min(0),
    message_id: z.string().nullable().meta({ description: "The API's message id (wamid… on the Cloud API) once it accepted the message." }),
    last_error: z.string().nullable(),
    created_at: timestamp,
    updated_at: timestamp,
    sent_at: timestamp.nullable(),
    simulated: z.literal(true).optional(),
  })
  .meta({
    examples: [
      {
        id: '8a6d0c1e-2f3b-4c5d-9e7f-0a1b2c3d4e5f',
        template: 'appointment_reminder',
        language: 'en',
        status: 'sent',
        attempts: 1,
        message_id: 'wamid.HBgLMjc4MjAwMDEwMDEVAgARGBI…',
        last_error: null,
        created_at: '2026-11-26T10:15:00.000Z',
        updated_at: '2026-11-26T10:15:00.180Z',
        sent_at: '2026-11-26T10:15:00.180Z',
      },
    ],
  });
