import { z } from 'zod';
import { storableText } from '../shared/text';
import { idempotencyKeySchema } from '../http/idempotency';

/** Keys that would reach an object's prototype if copied naively; they never carry contact data. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * RapidPro contact fields are flat: each value is text (at most 640 characters in RapidPro), a number
 * or empty. Nested values are refused, which also bounds the depth of what is stored as jsonb.
 */
const contactFields = z
  .record(storableText(128), z.union([storableText(640), z.number(), z.boolean(), z.null()]))
  .transform((fields) => Object.fromEntries(Object.entries(fields).filter(([key]) => !UNSAFE_KEYS.has(key))));

/**
 * RapidPro's default Call Webhook body and the body of flows migrated from legacy RapidPro.
 * Only the parts the companion uses are kept; everything else RapidPro sends is ignored.
 */
export const optoutWebhookSchema = z
  .object({
    contact: z.object({
      uuid: z.uuid(),
      name: storableText(640).nullish(),
      urn: storableText(255).nullish(),
      fields: contactFields.nullish(),
    }),
    flow: z.object({ uuid: z.uuid().nullish(), name: storableText(640).nullish() }).nullish(),
    results: z
      .object({
        optout_reason: z
          .object({
            // A result's value is text in RapidPro's body; numbers and booleans are taken as their text.
            value: z.union([storableText(640), z.number(), z.boolean()]).transform(String).nullish(),
            category: storableText(128).nullish(),
          })
          .nullish(),
      })
      .nullish(),
    run: z.object({ uuid: z.uuid().nullish() }).nullish(),
  })
  .meta({
    description: "RapidPro's default Call Webhook body (or the legacy-migrated one); other fields are ignored.",
    examples: [
      {
        contact: { uuid: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f', name: 'Jane', urn: 'whatsapp:27820001001' },
        flow: { uuid: 'bead76f5-dac4-4c9d-996c-c62b326e8c0a', name: 'NurseConnect opt-out' },
        results: { optout_reason: { value: 'job change', category: 'job_change' } },
        run: { uuid: '0196d7d9-6d0c-7fd3-b7a5-a5b1c1d2e3f4' },
      },
      {
        contact: {
          uuid: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f',
          urn: 'tel:+27820001001',
          fields: { facility_code: '123456', registered_by: '+27820001002', opt_out_date: '2026-11-26T10:15:00Z' },
        },
        results: { optout_reason: { value: '4', category: 'not_useful' } },
      },
    ],
  });

export type OptoutWebhook = z.infer<typeof optoutWebhookSchema>;

export const optoutIdempotencyKeySchema = idempotencyKeySchema(
  "Repeats of this API client's request with the same key for the same contact answer 200 with the first record; the key for another contact is 422 (RapidPro: `@run.uuid`).",
);

const timestamp = z.iso.datetime({ offset: true });

export const optoutAcceptedSchema = z
  .object({
    id: z.uuid(),
    contact_id: z.uuid(),
    status: z.literal('queued'),
    simulated: z.literal(true).optional().meta({ description: 'Present in simulation mode: nothing was stored.' }),
  })
  .meta({
    examples: [{ id: '3f1c2b7e-9a0d-4e55-8c1a-2b3c4d5e6f70', contact_id: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f', status: 'queued' }],
  });

export const optoutRecordSchema = z
  .object({
    id: z.uuid(),
    contact_id: z.uuid(),
    status: z.enum(['queued', 'submitted', 'failed', 'cancelled']),
    attempts: z.int().min(0),
    last_error: z.string().nullable(),
    created_at: timestamp,
    updated_at: timestamp,
    submitted_at: timestamp.nullable(),
    simulated: z.literal(true).optional(),
  })
  .meta({
    examples: [
      {
        id: '3f1c2b7e-9a0d-4e55-8c1a-2b3c4d5e6f70',
        contact_id: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f',
        status: 'submitted',
        attempts: 1,
        last_error: null,
        created_at: '2026-11-26T10:15:00.000Z',
        updated_at: '2026-11-26T10:15:01.250Z',
        submitted_at: '2026-11-26T10:15:01.250Z',
      },
    ],
  });
