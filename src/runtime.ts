import { once } from 'node:events';
import type { Server } from 'node:http';
import type { Worker } from 'bullmq';
import type { Deps } from './deps';
import { connectRedis } from './db/connections';
import { createApp } from './http/app';
import { createOptoutWorker } from './optouts/worker';
import { reconcileOptouts } from './optouts/reconciler';

export type Role = 'web' | 'worker' | 'all';

export interface Running {
  /** The port the web role listens on (undefined for a worker). */
  port: number | undefined;
  /** Stops taking work, lets in-flight requests and jobs finish, then closes every connection. */
  stop(): Promise<void>;
}

async function startWeb(deps: Deps): Promise<{ server: Server; port: number }> {
  const server = createApp(deps).listen(deps.config.port);
  await once(server, 'listening');
  // Longer than a load balancer's idle timeout, so that it closes idle connections first.
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : deps.config.port;
  deps.logger.info({ port }, 'web: listening');
  return { server, port };
}

async function startWorker(deps: Deps): Promise<{ worker?: Worker; stopReconciler: () => Promise<void> }> {
  const { config, logger } = deps;
  const { reconcileIntervalMs, reconcileGraceMs } = config.optouts;
  let reconciling: Promise<unknown> | undefined;
  // One run at a time: a slow run (a large backlog, a Redis that stopped answering) is not stacked on.
  const runReconciler = () => {
    reconciling ??= reconcileOptouts({ store: deps.optoutStore, queue: deps.optoutQueue, logger, graceMs: reconcileGraceMs })
      .catch((error: unknown) => logger.error({ err: error }, 'reconciler run failed; the next run will try again'))
      .finally(() => (reconciling = undefined));
  };
  runReconciler();
  const timer = setInterval(runReconciler, reconcileIntervalMs);
  timer.unref();
  const stopReconciler = async () => {
    clearInterval(timer);
    await reconciling;
  };

  if (!deps.optoutSubmitter) {
    logger.warn('worker: not submitting opt-outs until their settings are complete (see the warning above)');
    return { stopReconciler };
  }
  const connection = await connectRedis(config.redisUrl, { maxRetriesPerRequest: null });
  const worker = createOptoutWorker({
    submitter: deps.optoutSubmitter,
    connection,
    prefix: config.queuePrefix,
    concurrency: config.optouts.workerConcurrency,
    lockMs: config.optouts.workerLockMs,
    policy: config.optouts,
    logger,
  });
  await worker.waitUntilReady();
  worker.on('closed', () => connection.disconnect());
  logger.info({ concurrency: config.optouts.workerConcurrency, mode: config.dhis2.mode }, 'worker: submitting opt-outs');
  return { worker, stopReconciler };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

export async function serve(deps: Deps, role: Role): Promise<Running> {
  const web = role === 'worker' ? undefined : await startWeb(deps);
  const work = role === 'web' ? undefined : await startWorker(deps);
  return {
    port: web?.port,
    async stop() {
      await Promise.all([web && closeServer(web.server), work?.worker?.close(), work?.stopReconciler()]);
      await deps.close();
    },
  };
}
