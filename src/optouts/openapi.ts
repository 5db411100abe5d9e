import { z } from 'zod';
import { COMMON_RESPONSES, SIMULATION_HEADER, errorSchema, type ApiOperation } from '../http/openapi';
import { optoutIdempotencyKeySchema, optoutAcceptedSchema, optoutRecordSchema, optoutWebhookSchema } from './schemas';

export const optoutOperations: ApiOperation[] = [
  {
    method: 'post',
    path: '/api/v1/optouts',
    operationId: 'createOptout',
    summary: "Accept a nurse's opt-out for submission to DHIS2",
    description:
      'The opt-out is committed before the answer and submitted by a worker (RapidPro look-up, then OpenHIM or the DHIS2 tracker API), ' +
      'with retries. A repeat (the same Idempotency-Key from the same API client for the same contact, or a contact that already has a ' +
      'queued opt-out) answers 200 with the earlier record; a queued opt-out another API client created shows only its id, contact and status. ' +
      'Keys belong to one API client: one it already used for another contact is refused (422) and nothing is stored.',
    parameters: [
      { name: 'Idempotency-Key', in: 'header', description: 'Optional request key, e.g. `@run.uuid`.', schema: optoutIdempotencyKeySchema.unwrap() },
      SIMULATION_HEADER,
    ],
    requestBody: optoutWebhookSchema,
    responses: {
      '202': { description: 'Accepted and queued.', schema: optoutAcceptedSchema, headers: { Location: 'The URL of the opt-out, `/api/v1/optouts/{id}`.' } },
      '200': {
        description: "Already accepted: the earlier record (another API client's queued opt-out: its id, contact and status only).",
        schema: z.union([optoutRecordSchema, optoutAcceptedSchema]),
      },
      '422': { description: 'The Idempotency-Key was already used by this API client for another contact: nothing stored.', schema: errorSchema },
      ...COMMON_RESPONSES,
    },
  },
  {
    method: 'get',
    path: '/api/v1/optouts/{id}',
    operationId: 'getOptout',
    summary: 'Where an opt-out is: queued, submitted, failed or cancelled',
    parameters: [{ name: 'id', in: 'path', description: 'The id answered when the opt-out was accepted.', schema: z.uuid() }],
    responses: {
      '200': { description: 'The opt-out.', schema: optoutRecordSchema },
      '401': COMMON_RESPONSES['401']!,
      '404': { description: 'No such opt-out, or one another API client created.', schema: errorSchema },
    },
  },
];
