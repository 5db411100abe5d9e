import type { Request } from 'express';
import { z } from 'zod';
import { storableText } from '../shared/text';
import { parseOrThrow } from './validate';

/** The Idempotency-Key header (RapidPro flows usually send `@run.uuid`); `description` says what a repeat is answered. */
export const idempotencyKeySchema = (description: string) => z.string().trim().min(1).pipe(storableText(255)).optional().meta({ description });

export type IdempotencyKeySchema = ReturnType<typeof idempotencyKeySchema>;

/** The request's Idempotency-Key, if it sent one; a bad one is a 400 naming the header. */
export function readIdempotencyKey(req: Request, schema: IdempotencyKeySchema): string | undefined {
  return parseOrThrow(z.object({ 'idempotency-key': schema }), { 'idempotency-key': req.get('idempotency-key') })['idempotency-key'];
}
