import { z } from 'zod';
import { COMMON_RESPONSES, SIMULATION_HEADER, errorSchema, type ApiOperation } from '../http/openapi';
import { templateBodySchema, templateQuerySchema, templateSendAcceptedSchema, templateSendIdempotencyKeySchema, templateSendRecordSchema } from './schemas';

/** Whatever the upstream answered: WhatsApp's own JSON, passed on unchanged. */
const upstreamAnswerSchema = z.looseObject({}).meta({
  examples: [{ messaging_product: 'whatsapp', contacts: [{ input: '+27820001001', wa_id: '27820001001' }], messages: [{ id: 'wamid.HBgL…' }] }],
});

const query = templateQuerySchema.shape;
/** The query string both template routes read, as the body's fallback. */
const templateQueryParameters = [
  { name: 'template', in: 'query', description: query.template.description ?? '', schema: query.template },
  { name: 'language', in: 'query', description: query.language.description ?? '', schema: query.language },
  { name: 'param', in: 'query', description: query.param.description ?? '', schema: query.param },
] as const;

export const whatsappOperations: ApiOperation[] = [
  {
    method: 'post',
    path: '/api/v1/whatsapp/templates',
    operationId: 'sendWhatsappTemplate',
    summary: 'Send one WhatsApp template message and answer with the upstream answer',
    description:
      'Sends through the Cloud API or Turn / the On-Premises API (WHATSAPP_API), once, while RapidPro waits. The recipient is `to`, ' +
      "else the contact's whatsapp: or tel: URN; each template field comes from the body, else from the query string, so that a flow " +
      "can keep RapidPro's default body. The answer is the upstream's status and JSON body unchanged (a 429 keeps its Retry-After), " +
      'except: a 2xx whose body holds `error` or `errors` is 502, no answer in WHATSAPP_TIMEOUT_MS is 504, an unreachable upstream ' +
      'is 502, and a number the on-prem contacts check calls invalid is 404. Every send is recorded.',
    parameters: [
      ...templateQueryParameters,
      SIMULATION_HEADER,
    ],
    requestBody: templateBodySchema,
    responses: {
      ...COMMON_RESPONSES,
      '400': {
        description: 'Invalid JSON or request (`invalid request`, with `details`; nothing was sent), or the upstream refused the message (its own body).',
        schema: z.union([errorSchema, upstreamAnswerSchema]),
      },
      '200': { description: "The upstream's success (201 from some on-prem versions); `simulated: true` in the simulator.", schema: upstreamAnswerSchema },
      '404': { description: 'On-prem: the number has no WhatsApp account (`not a WhatsApp contact`); nothing was sent.', schema: errorSchema },
      '502': {
        description: "A 2xx that reported an error (the upstream's body), `upstream unavailable`, or `contact check inconclusive`.",
        schema: z.union([errorSchema, upstreamAnswerSchema]),
      },
      '503': { description: 'WhatsApp settings are missing (`WhatsApp is not configured: set …`).', schema: errorSchema },
      '504': { description: '`upstream timeout`: no answer within WHATSAPP_TIMEOUT_MS.', schema: errorSchema },
      default: { description: "Any other upstream answer (401, 403, 429 with Retry-After, 5xx…), status and body unchanged.", schema: upstreamAnswerSchema },
    },
  },
  {
    method: 'post',
    path: '/api/v1/whatsapp/template-sends',
    operationId: 'queueWhatsappTemplate',
    summary: 'Queue one WhatsApp template message for a worker to send',
    description:
      'For flows that need not wait for WhatsApp (reminders, broadcasts). The same body and query as `/api/v1/whatsapp/templates`, ' +
      'validated the same way (400, nothing queued); the send is committed before the answer and sent by a worker, at most ' +
      'WHATSAPP_SEND_RATE a second across all workers. 429 (every worker pauses for its Retry-After), 5xx, timeouts and connection ' +
      "errors are tried again with backoff, up to WHATSAPP_SEND_MAX_ATTEMPTS tries, as are Meta's rate-limit error codes under any " +
      'status; other refusals fail it at once. WhatsApp has no idempotency key: a send is repeated only when a crash cut it ' +
      "between the API's answer and its record, or when no answer came (a timeout: the message may have gone).",
    parameters: [
      ...templateQueryParameters,
      { name: 'Idempotency-Key', in: 'header', description: 'Optional request key, e.g. `@run.uuid`.', schema: templateSendIdempotencyKeySchema.unwrap() },
      SIMULATION_HEADER,
    ],
    requestBody: templateBodySchema,
    responses: {
      '202': {
        description: 'Accepted and queued (`simulated: true` in the simulator: nothing stored or sent).',
        schema: templateSendAcceptedSchema,
        headers: { Location: 'The URL of the send, `/api/v1/whatsapp/template-sends/{id}`.' },
      },
      '200': { description: 'The same Idempotency-Key as an earlier request: that send.', schema: templateSendRecordSchema },
      '422': { description: 'The Idempotency-Key was already used by this API client for another request: nothing queued.', schema: errorSchema },
      '503': { description: 'WhatsApp settings are missing (`WhatsApp is not configured: set …`); nothing queued.', schema: errorSchema },
      ...COMMON_RESPONSES,
    },
  },
  {
    method: 'get',
    path: '/api/v1/whatsapp/template-sends/{id}',
    operationId: 'getWhatsappTemplateSend',
    summary: 'Where a queued send is: queued, sent, failed or cancelled',
    parameters: [{ name: 'id', in: 'path', description: 'The id answered when the send was queued.', schema: z.uuid() }],
    responses: {
      '200': { description: 'The send.', schema: templateSendRecordSchema },
      '401': COMMON_RESPONSES['401']!,
      '404': { description: 'No such send, or one another API client queued.', schema: errorSchema },
    },
  },
];
