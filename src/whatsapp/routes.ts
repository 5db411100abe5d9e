import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { AppError } from '../errors';
import { apiClientOf } from '../http/auth';
import { readIdempotencyKey } from '../http/idempotency';
import { isSimulation } from '../http/simulation';
import { parseOrThrow } from '../http/validate';
import {
  templateBodySchema,
  templateQuerySchema,
  templateRequestFrom,
  templateSendIdempotencyKeySchema,
  type RequestDefaults,
  type TemplateRequest,
} from './schemas';
import type { WhatsappService } from './service';
import type { TemplateSend } from './template-send-store';
import type { TemplateSendService } from './template-sends';

/** Query problems are reported as `query.<name>`, apart from the body's fields of the same name. */
const queryEnvelope = z.object({ query: templateQuerySchema });

const sendIdSchema = z.uuid();

/** The contract's view of a queued send. */
export function presentTemplateSend(send: TemplateSend) {
  return {
    id: send.id,
    template: send.template,
    language: send.language,
    status: send.status,
    attempts: send.attempts,
    message_id: send.messageId,
    last_error: send.lastError,
    created_at: send.createdAt.toISOString(),
    updated_at: send.updatedAt.toISOString(),
    sent_at: send.sentAt?.toISOString() ?? null,
  };
}

export function whatsappRoutes(services: { whatsapp: WhatsappService; templateSends: TemplateSendService }, defaults: RequestDefaults): Router {
  const router = Router();

  /** The send a request asks for, from its body and query: a 400 naming every problem otherwise. */
  function requestOf(req: Request): TemplateRequest {
    const body = parseOrThrow(templateBodySchema, req.body ?? {});
    const { query } = parseOrThrow(queryEnvelope, { query: req.query });
    return templateRequestFrom(body, query, defaults);
  }

  router.post('/templates', async (req, res) => {
    const request = requestOf(req);
    const answer = await services.whatsapp.send(request, { apiClientId: apiClientOf(res.locals).id, simulated: isSimulation(req), log: req.log });
    res.status(answer.status).set(answer.headers).type('json').send(answer.json);
  });

  router.post('/template-sends', async (req: Request, res: Response) => {
    const request = requestOf(req);
    const idempotencyKey = readIdempotencyKey(req, templateSendIdempotencyKeySchema);
    const simulated = isSimulation(req);
    const result = await services.templateSends.accept(request, { apiClientId: apiClientOf(res.locals).id, idempotencyKey, simulated });
    const flag = simulated ? { simulated: true } : {};
    if (result.kind === 'key-reused') throw new AppError(422, 'Idempotency-Key already used for another request');
    if (result.kind === 'repeat') {
      res.status(200).json({ ...presentTemplateSend(result.send), ...flag });
      return;
    }
    if (!simulated) res.location(`/api/v1/whatsapp/template-sends/${result.send.id}`);
    res.status(202).json({ id: result.send.id, status: result.send.status, ...flag });
  });

  router.get('/template-sends/:id', async (req, res) => {
    const parsed = sendIdSchema.safeParse(req.params.id);
    const send = parsed.success ? await services.templateSends.getFor(parsed.data, apiClientOf(res.locals).id) : null;
    if (!send) throw AppError.notFound();
    res.json(presentTemplateSend(send));
  });

  return router;
}
