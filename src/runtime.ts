import { once } from 'node:events';
import type { Server } from 'node:http';
import type { Worker } from 'bullmq';
import type { Deps } from './deps';
import { connectRedis } from './db/connections';
import type { Express } from 'express';
import { createApp, createMetricsApp, createOpsApp } from './app';
import { metricsOnMainPort } from './ops/routes';
import { createOptoutWorker } from './optouts/worker';
import { createReconcilerLock, reconcileOptouts } from './optouts/reconciler';

export type Role = 'web' | 'worker' | 'all';

export interface Running {
  /** The port the process listens on: the whole app, or (for a worker) the operations endpoints. */
  port: number;
  /** The port of /metrics alone, when METRICS_PORT is set. */
  metricsPort?: number;
  /** Stops taking work, lets in-flight requests and jobs finish, then closes every connection. */
  stop(): Promise<void>;
}

async function listen(app: Express, port: number): Promise<{ server: Server; port: number }> {
  const server = app.listen(port);
  await once(server, 'listening');
  // Longer than a load balancer's idle timeout, so that it closes idle connections first.
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : port };
}

/** The listener of METRICS_PORT, when set; says at start-up where /metrics is not served, and why. */
async function listenForMetrics(deps: Deps): Promise<{ server: Server; port: number } | undefined> {
  const { config, logger } = deps;
  if (config.metricsPort === undefined) {
    if (!metricsOnMainPort(config)) logger.warn('GET /metrics answers 404: NODE_ENV=production without METRICS_TOKEN; set METRICS_TOKEN, or METRICS_PORT to serve it on a port of its own');
    return undefined;
  }
  const metrics = await listen(createMetricsApp(deps), config.metricsPort);
  logger.info({ port: metrics.port }, 'metrics: listening');
  return metrics;
}

async function startWorker(deps: Deps): Promise<{ worker?: Worker; stopReconciler: () => Promise<void> }> {
  const { config, logger } = deps;
  const { reconcileIntervalMs, reconcileGraceMs } = config.optouts;
  let reconciling: Promise<unknown> | undefined;
  // Held while a run lasts, and for one interval at most: a worker killed mid-run holds up no one's next run.
  // A run that outlasts it may overlap another replica's, which is harmless (job ids come from opt-out ids).
  const lock = createReconcilerLock(deps.redis, config.queuePrefix, reconcileIntervalMs);
  // One run at a time: a slow run (a large backlog, a Redis that stopped answering) is not stacked on.
  const runReconciler = () => {
    reconciling ??= reconcileOptouts({ store: deps.optoutStore, queue: deps.optoutQueue, logger, graceMs: reconcileGraceMs, lock })
      .catch((error: unknown) => logger.error({ err: error }, 'reconciler run failed; the next run will try again'))
      .finally(() => (reconciling = undefined));
  };
  runReconciler();
  // A timer of this process, not a BullMQ job scheduler: a FLUSHALL would lose a scheduler kept in Redis (fault scenario "Redis is flushed (FLUSHALL) twice mid-run").
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
  const connection = await connectRedis(config.redis, { maxRetriesPerRequest: null });
  const worker = createOptoutWorker({
    submitter: deps.optoutSubmitter,
    connection,
    prefix: config.queuePrefix,
    concurrency: config.optouts.workerConcurrency,
    rateLimitPerSecond: config.optouts.rateLimitPerSecond,
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
  const http = await listen(role === 'worker' ? createOpsApp(deps) : createApp(deps), deps.config.port);
  deps.logger.info({ port: http.port, role }, role === 'worker' ? 'worker: operations endpoints listening' : 'web: listening');
  const metrics = await listenForMetrics(deps);
  const work = role === 'web' ? undefined : await startWorker(deps);
  return {
    port: http.port,
    metricsPort: metrics?.port,
    async stop() {
      await Promise.all([closeServer(http.server), metrics && closeServer(metrics.server), work?.worker?.close(), work?.stopReconciler()]);
      // A client that hung up closes its connection before its opt-out is enqueued: wait for those too.
      await deps.optouts.settle();
      // Answered sends are recorded after RapidPro has its answer: let those rows be written.
      await deps.whatsapp.settle();
      await deps.close();
    },
  };
}
