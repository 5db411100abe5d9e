import { Router } from 'express';
import type { Deps } from '../deps';

async function answers(check: () => Promise<unknown>, timeoutMs = 2000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([check().then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** /healthz: the process runs. /readyz: it can do its work, i.e. PostgreSQL and Redis answer. */
export function healthRoutes(deps: Pick<Deps, 'db' | 'redis'>): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const [postgres, redis] = await Promise.all([answers(() => deps.db.$queryRaw`SELECT 1`), answers(() => deps.redis.ping())]);
    const down = [...(postgres ? [] : ['postgres']), ...(redis ? [] : ['redis'])];
    res.status(down.length === 0 ? 200 : 503).json({
      status: down.length === 0 ? 'ready' : 'unavailable',
      checks: { postgres: postgres ? 'ok' : 'down', redis: redis ? 'ok' : 'down' },
      ...(down.length > 0 ? { error: `${down.join(' and ')} not answering` } : {}),
    });
  });
  return router;
}
