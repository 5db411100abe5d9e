import { Router } from 'express';
import { z } from 'zod';
import { apiClientOf } from '../http/auth';
import { isSimulation } from '../http/simulation';
import { parseOrThrow } from '../http/validate';
import { templateBodySchema, templateQuerySchema, templateRequestFrom, type RequestDefaults } from './schemas';
import type { WhatsappService } from './service';

/** Query problems are reported as `query.<name>`, apart from the body's fields of the same name. */
const queryEnvelope = z.object({ query: templateQuerySchema });

export function whatsappRoutes(service: WhatsappService, defaults: RequestDefaults): Router {
  const router = Router();

  router.post('/templates', async (req, res) => {
    const body = parseOrThrow(templateBodySchema, req.body ?? {});
    const { query } = parseOrThrow(queryEnvelope, { query: req.query });
    const request = templateRequestFrom(body, query, defaults);
    const answer = await service.send(request, { apiClientId: apiClientOf(res.locals).id, simulated: isSimulation(req), log: req.log });
    res.status(answer.status).set(answer.headers).type('json').send(answer.json);
  });

  return router;
}
