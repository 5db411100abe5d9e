import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import type { Deps } from '../deps';
import { healthRoutes } from '../ops/health';
import { optoutRoutes } from '../optouts/routes';
import { whatsappRoutes } from '../whatsapp/routes';
import { requireApiToken } from './auth';
import { errorHandler, notFound } from './errors';
import { jsonBody } from './json-body';

const REQUEST_ID = /^[\w.-]{1,128}$/;

/** The HTTP face of the companion. Middleware order: request id and log, health, then /api behind token auth. */
export function createApp(deps: Deps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 1);

  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('x-request-id', id);
        return id;
      },
      // Paths only: query strings may carry phone numbers; bodies and headers are never logged.
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, path: req.url.split('?')[0] }),
        res: (res: { statusCode: number }) => ({ status: res.statusCode }),
      },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : 'info'),
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
    }),
  );

  app.use(healthRoutes(deps));

  const api = express.Router();
  api.use(requireApiToken(deps.apiClients));
  api.use(jsonBody());
  api.use('/v1/optouts', optoutRoutes(deps.optouts));
  api.use('/v1/whatsapp', whatsappRoutes(deps.whatsapp, deps.config.whatsapp.defaultLanguage));
  api.use(notFound);
  app.use('/api', api);

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
