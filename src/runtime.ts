import { once } from 'node:events';
import type { Server } from 'node:http';
import type { Worker } from 'bullmq';
import type { Deps } from './deps';
import { connectRedis } from './db/connections';
import type { Express } from 'express';
import { createApp, createMetricsApp, createOpsApp } from './app';
import { metricsOnMainPort } from './ops/routes';
import type { RowQueue } from './jobs/queue';
import { createReconcilerLock, reconcileQueue, type QueuedRows } from './jobs/reconciler';
import type { RetryPolicy } from './jobs/retry-policy';
import { createRowWorker, type RetryOutcome } from './jobs/worker';

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

/** What one kind of queued row (opt-outs, template sends) needs to be worked on and reconciled. */
interface RowJobs<Outcome extends { kind: string }> {
  queue: RowQueue;
  queued: QueuedRows;
  /** One try at a row; undefined while its settings are missing (the reconciler still runs). */
  tryRow: ((id: string) => Promise<Outcome | RetryOutcome>) | undefined;
  concurrency: number;
  rateLimitPerSecond?: number;
  policy: RetryPolicy;
  /** Logged at start-up: what the worker does, or why it does not. */
  started: { facts: object; message: string };
  notStarted: string;
}

interface Started {
  worker?: Worker;
  stopReconciler: () => Promise<void>;
}

/** A reconciler for the rows' queue, and a worker when they can be worked on. */
async function startRowJobs<Outcome extends { kind: string }>(deps: Deps, jobs: RowJobs<Outcome>): Promise<Started> {
  const { config, logger } = deps;
  const { reconcileIntervalMs, reconcileGraceMs } = config.jobs;
  let reconciling: Promise<unknown> | undefined;
  // Held while a run lasts, and for one interval at most: a worker killed mid-run holds up no one's next run.
  // A run that outlasts it may overlap another replica's, which is harmless (job ids come from row ids).
  const lock = createReconcilerLock(deps.redis, config.queuePrefix, jobs.queue, reconcileIntervalMs);
  // One run at a time: a slow run (a large backlog, a Redis that stopped answering) is not stacked on.
  const runReconciler = () => {
    reconciling ??= reconcileQueue({ queued: jobs.queued, queue: jobs.queue, logger, graceMs: reconcileGraceMs, lock })
      .catch((error: unknown) => logger.error({ err: error, queue: jobs.queue.kind.queueName }, 'reconciler run failed; the next run will try again'))
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

  if (!jobs.tryRow) {
    logger.warn(jobs.notStarted);
    return { stopReconciler };
  }
  const connection = await connectRedis(config.redis, { maxRetriesPerRequest: null });
  const worker = createRowWorker({
    kind: jobs.queue.kind,
    tryRow: jobs.tryRow,
    connection,
    prefix: config.queuePrefix,
    concurrency: jobs.concurrency,
    rateLimitPerSecond: jobs.rateLimitPerSecond,
    lockMs: config.jobs.workerLockMs,
    policy: jobs.policy,
    logger,
  });
  await worker.waitUntilReady();
  worker.on('closed', () => connection.disconnect());
  logger.info({ concurrency: jobs.concurrency, ...jobs.started.facts }, jobs.started.message);
  return { worker, stopReconciler };
}

/** Enough queued sends in flight to keep up WHATSAPP_SEND_RATE while WhatsApp takes up to a second to answer. */
const templateSendConcurrency = (ratePerSecond: number) => Math.min(200, Math.max(10, Math.ceil(ratePerSecond)));

async function startWorker(deps: Deps): Promise<Started[]> {
  const { config } = deps;
  const { optoutSubmitter, templateSender } = deps;
  return Promise.all([
    startRowJobs(deps, {
      queue: deps.optoutQueue,
      queued: deps.optoutStore.queuedOptouts,
      tryRow: optoutSubmitter && ((id) => optoutSubmitter.submit(id)),
      concurrency: config.optouts.workerConcurrency,
      rateLimitPerSecond: config.optouts.rateLimitPerSecond,
      policy: config.optouts,
      started: { facts: { mode: config.dhis2.mode }, message: 'worker: submitting opt-outs' },
      notStarted: 'worker: not submitting opt-outs until their settings are complete (see the warning above)',
    }),
    startRowJobs(deps, {
      queue: deps.templateSendQueue,
      queued: deps.templateSendStore.queued,
      tryRow: templateSender && ((id) => templateSender.send(id)),
      concurrency: templateSendConcurrency(config.templateSends.ratePerSecond),
      rateLimitPerSecond: config.templateSends.ratePerSecond,
      policy: config.templateSends,
      started: { facts: { api: config.whatsapp.api, ratePerSecond: config.templateSends.ratePerSecond }, message: 'worker: sending queued WhatsApp templates' },
      notStarted: 'worker: not sending queued WhatsApp templates until WhatsApp settings are complete (see the warning above)',
    }),
  ]);
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
  const work = role === 'web' ? [] : await startWorker(deps);
  return {
    port: http.port,
    metricsPort: metrics?.port,
    async stop() {
      await Promise.all([
        closeServer(http.server),
        metrics && closeServer(metrics.server),
        ...work.flatMap((started) => [started.worker?.close(), started.stopReconciler()]),
      ]);
      // A client that hung up closes its connection before its row is enqueued: wait for those too.
      await Promise.all([deps.optouts.settle(), deps.templateSends.settle()]);
      // Answered sends are recorded after RapidPro has its answer: let those rows be written.
      await deps.whatsapp.settle();
      await deps.close();
    },
  };
}
