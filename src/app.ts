import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import express, { type Express, type Response } from 'express';
import { pinoHttp } from 'pino-http';
import type { Deps } from './deps';
import { metricsPortRoutes, opsRoutes } from './ops/routes';
import { httpMetrics } from './ops/metrics';
import { optoutOperations } from './optouts/openapi';
import { optoutRoutes } from './optouts/routes';
import { staffRoutes } from './admin/routes';
import { VERSION } from './version';
import { whatsappOperations } from './whatsapp/openapi';
import { whatsappRoutes } from './whatsapp/routes';
import { requireApiToken } from './http/auth';
import { errorHandler, notFound } from './http/errors';
import { jsonBody } from './http/json-body';
import { addOpenApiRoutes, buildOpenApiDocument, type ApiOperation } from './http/openapi';

const REQUEST_ID = /^[\w.-]{1,128}$/;
/** Probed every few seconds: not worth a log line each. */
const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** The /api features: where each is mounted, its router, and the operations it documents. */
export function apiFeatures(deps: Deps): Array<{ prefix: string; router: express.Router; operations: ApiOperation[] }> {
  return [
    { prefix: '/v1/optouts', router: optoutRoutes(deps.optouts), operations: optoutOperations },
    {
      prefix: '/v1/whatsapp',
      router: whatsappRoutes({ whatsapp: deps.whatsapp, templateSends: deps.templateSends }, { language: deps.config.whatsapp.defaultLanguage, country: deps.config.defaultCountry }),
      operations: whatsappOperations,
    },
  ];
}

/**
 * The HTTP face of the companion. Middleware order: metrics, request id and log, /api (token auth
 * on every route), the API's public documentation (/openapi.json, /docs), the ops endpoints, then the
 * staff pages (/admin, /auth) behind Google sign-in. The webhooks come first because they are the
 * busy path: each router a request passes through costs it CPU.
 */
export function createApp(deps: Deps): Express {
  const app = baseApp(deps);
  const features = apiFeatures(deps);
  const api = express.Router();
  api.use(requireApiToken(deps.apiClients, deps.config.failedAuth));
  api.use(jsonBody());
  for (const feature of features) api.use(feature.prefix, feature.router);
  api.use(notFound);
  app.use('/api', api);
  addOpenApiRoutes(app, buildOpenApiDocument(features.flatMap((feature) => feature.operations), VERSION));
  app.use(opsRoutes(deps));
  app.use(staffRoutes(deps));
  return finish(app);
}

/** What a worker serves on PORT: the operations endpoints alone. */
export function createOpsApp(deps: Deps): Express {
  const app = baseApp(deps);
  app.use(opsRoutes(deps));
  return finish(app);
}

/** What METRICS_PORT serves, when set: /metrics and /healthz alone. */
export function createMetricsApp(deps: Deps): Express {
  const app = baseApp(deps);
  app.use(metricsPortRoutes(deps));
  return finish(app);
}

function finish(app: Express): Express {
  app.use(notFound);
  app.use(errorHandler);
  return app;
}

function withApiClient(res: ServerResponse, line: object): object {
  const client = (res as Response).locals?.apiClient;
  return client ? { ...line, apiClient: client.name } : line;
}

/** Request id and log, and metrics: common to every role. */
function baseApp(deps: Deps): Express {
  const app = express();
  app.disable('x-powered-by');
  // No ETag on answers: the API's are POST answers nobody revalidates, the staff pages are dynamic;
  // computing one hashed every answer's body.
  app.set('etag', false);
  // The client's address (failed-authentication limit, logs) and scheme (secure cookies) as the
  // trusted proxies saw them; with none, X-Forwarded-* could be set by anyone and is ignored.
  app.set('trust proxy', deps.config.trustedProxies);

  app.use(httpMetrics(deps.metrics));
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
      // Which API client asked: added to the request's one line, rather than a child logger per request.
      customSuccessObject: (_req, res, line: object) => withApiClient(res, line),
      customErrorObject: (_req, res, _error, line: object) => withApiClient(res, line),
      autoLogging: { ignore: (req) => OPS_PATHS.has(req.url ?? '') },
    }),
  );
  return app;
}
