import { z } from 'zod';
import { storableText } from '../shared/text';

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
export const optoutWebhookSchema = z.object({
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
});

export type OptoutWebhook = z.infer<typeof optoutWebhookSchema>;

/** Idempotency-Key: RapidPro flows usually send @run.uuid or a similar value. */
export const idempotencyKeySchema = z.string().trim().min(1).pipe(storableText(255)).optional();
