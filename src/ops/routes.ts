import { createHash, timingSafeEqual } from 'node:crypto';
import { Router, type RequestHandler } from 'express';
import type { Config } from '../config';
import type { Database } from '../db/client';
import type { RedisConnection } from '../db/connections';
import { AppError } from '../errors';
import { resultWithin } from '../shared/within';
import type { Metrics } from './metrics';

async function answers(check: () => Promise<unknown>, timeoutMs = 2000): Promise<boolean> {
  return (await resultWithin(check, timeoutMs)) !== undefined;
}

function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** `Authorization: Bearer {METRICS_TOKEN}` when the token is set; open otherwise (a private network). */
function metricsAuth(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (token && !sameSecret(req.get('authorization') ?? '', `Bearer ${token}`)) throw AppError.unauthorized();
    next();
  };
}

type OpsDeps = { db: Database; redis: RedisConnection; metrics: Metrics; config: Config };
type MetricsSettings = Pick<Config, 'env' | 'metricsToken' | 'metricsPort'>;

/**
 * Whether PORT serves /metrics: not when METRICS_PORT serves it, nor in production without a token
 * (PORT is the public one there); otherwise it does, behind the token when one is set.
 */
export function metricsOnMainPort(config: MetricsSettings): boolean {
  return config.metricsPort === undefined && (config.metricsToken !== undefined || config.env !== 'production');
}

function healthz(router: Router): void {
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
}

function metricsRoute(router: Router, deps: OpsDeps): void {
  router.get('/metrics', metricsAuth(deps.config.metricsToken), async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
}

/**
 * Operations endpoints, served by every role (a worker listens on PORT for these alone):
 * /healthz: the process runs. /readyz: PostgreSQL and Redis answer. /metrics: Prometheus text,
 * unless metricsOnMainPort says otherwise (a 404 then).
 */
export function opsRoutes(deps: OpsDeps): Router {
  const router = Router();
  healthz(router);
  router.get('/readyz', async (_req, res) => {
    const [postgres, redis] = await Promise.all([answers(() => deps.db.$queryRaw`SELECT 1`), answers(() => deps.redis.ping())]);
    const down = [...(postgres ? [] : ['postgres']), ...(redis ? [] : ['redis'])];
    res.status(down.length === 0 ? 200 : 503).json({
      status: down.length === 0 ? 'ready' : 'unavailable',
      checks: { postgres: postgres ? 'ok' : 'down', redis: redis ? 'ok' : 'down' },
      ...(down.length > 0 ? { error: `${down.join(' and ')} not answering` } : {}),
    });
  });
  if (metricsOnMainPort(deps.config)) metricsRoute(router, deps);
  return router;
}

/** What METRICS_PORT serves: /metrics (behind the token when one is set) and /healthz. */
export function metricsPortRoutes(deps: OpsDeps): Router {
  const router = Router();
  healthz(router);
  metricsRoute(router, deps);
  return router;
}
