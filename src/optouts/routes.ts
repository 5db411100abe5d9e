import { Router } from 'express';
import { z } from 'zod';
import { apiClientOf } from '../http/auth';
import { parseOrThrow } from '../http/validate';
import { AppError } from '../errors';
import { isSimulation } from '../http/simulation';
import { optoutIdempotencyKeySchema, optoutWebhookSchema } from './schemas';
import { readIdempotencyKey } from '../http/idempotency';
import type { OptoutService } from './service';
import type { Optout } from './store';

/** The contract's view of an opt-out. */
export function presentOptout(optout: Optout) {
  return {
    id: optout.id,
    contact_id: optout.contactUuid,
    status: optout.status,
    attempts: optout.attempts,
    last_error: optout.lastError,
    created_at: optout.createdAt.toISOString(),
    updated_at: optout.updatedAt.toISOString(),
    submitted_at: optout.submittedAt?.toISOString() ?? null,
  };
}

/**
 * A duplicate's answer: the earlier record, when the caller's own. A contact's queued opt-out that another
 * API client created shows only what a 202 would (its id, the contact the caller sent, queued): its
 * attempts, errors and times are that client's, and the caller cannot read them with GET either.
 */
function presentDuplicate(optout: Optout, apiClientId: string) {
  return optout.apiClientId === apiClientId ? presentOptout(optout) : { id: optout.id, contact_id: optout.contactUuid, status: optout.status };
}

const optoutIdSchema = z.uuid();

export function optoutRoutes(service: OptoutService): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const webhook = parseOrThrow(optoutWebhookSchema, req.body);
    const idempotencyKey = readIdempotencyKey(req, optoutIdempotencyKeySchema);
    const simulated = isSimulation(req);
    const apiClientId = apiClientOf(res.locals).id;
    const result = await service.accept(webhook, { apiClientId, idempotencyKey, simulated });
    const flag = simulated ? { simulated: true } : {};
    if (result.kind === 'key-reused') throw new AppError(422, 'Idempotency-Key already used for another request');
    if (result.kind === 'duplicate') {
      res.status(200).json({ ...presentDuplicate(result.optout, apiClientId), ...flag });
      return;
    }
    const { optout } = result;
    if (!simulated) res.location(`/api/v1/optouts/${optout.id}`);
    res.status(202).json({ id: optout.id, contact_id: optout.contactUuid, status: optout.status, ...flag });
  });

  router.get('/:id', async (req, res) => {
    const parsed = optoutIdSchema.safeParse(req.params.id);
    const optout = parsed.success ? await service.getFor(parsed.data, apiClientOf(res.locals).id) : null;
    if (!optout) throw AppError.notFound();
    res.json(presentOptout(optout));
  });

  return router;
}
