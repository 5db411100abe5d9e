import { z } from 'zod';

/** Keys that would reach an object's prototype if copied naively; they never carry contact data. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const contactFields = z
  .record(z.string().max(128), z.unknown())
  .transform((fields) => Object.fromEntries(Object.entries(fields).filter(([key]) => !UNSAFE_KEYS.has(key))));

/**
 * RapidPro's default Call Webhook body and the body of flows migrated from legacy RapidPro.
 * Only the parts the companion uses are kept; everything else RapidPro sends is ignored.
 */
export const optoutWebhookSchema = z.object({
  contact: z.object({
    uuid: z.uuid(),
    name: z.string().max(640).nullish(),
    urn: z.string().max(255).nullish(),
    fields: contactFields.nullish(),
  }),
  flow: z.object({ uuid: z.uuid().nullish(), name: z.string().max(640).nullish() }).nullish(),
  results: z
    .object({
      optout_reason: z
        .object({ value: z.coerce.string().max(640).nullish(), category: z.string().max(128).nullish() })
        .nullish(),
    })
    .nullish(),
  run: z.object({ uuid: z.uuid().nullish() }).nullish(),
});

export type OptoutWebhook = z.infer<typeof optoutWebhookSchema>;

/** Idempotency-Key: RapidPro flows usually send @run.uuid or a similar value. */
export const idempotencyKeySchema = z.string().trim().min(1).max(255).optional();
