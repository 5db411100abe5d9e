import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { resultWithin } from '../shared/within';

/**
 * How long a scrape waits for a queue's counts. Redis answers them at once when it is well; a frozen
 * one would otherwise hold every scrape for the Redis command timeout.
 */
const QUEUE_COUNTS_TIMEOUT_MS = 1000;

/**
 * The companion's Prometheus metrics, in a registry of its own per process (tests build several apps
 * in one process). Counters count what this process did; gauges read shared state at scrape time.
 */
export function createMetrics() {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'companion' });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const queues = new Map<string, () => Promise<Record<string, number>>>();

  const queueJobs = new Gauge({
    name: 'companion_queue_jobs',
    help: 'Jobs in each queue, by state (read from Redis at scrape time; absent while companion_queue_up is 0)',
    labelNames: ['queue', 'state'] as const,
    registers,
    collect: () => readQueues(),
  });
  const queueUp = new Gauge({
    name: 'companion_queue_up',
    help: "Whether the queue's job counts could be read from Redis at scrape time (1) or not (0: Redis away or not answering)",
    labelNames: ['queue'] as const,
    registers,
    collect: () => readQueues(),
  });
  // A Redis outage must not fail the scrape: every other metric matters most exactly then.
  async function readAllQueues(): Promise<void> {
    queueJobs.reset();
    await Promise.all(
      [...queues].map(async ([queue, counts]) => {
        const read = await resultWithin(counts, QUEUE_COUNTS_TIMEOUT_MS);
        for (const [state, count] of Object.entries(read?.value ?? {})) queueJobs.set({ queue, state }, count);
        queueUp.set({ queue }, read ? 1 : 0);
      }),
    );
  }
  // The registry collects both gauges at once on a scrape: they share one reading of Redis.
  let reading: Promise<void> | undefined;
  const readQueues = () => (reading ??= readAllQueues().finally(() => (reading = undefined)));

  return {
    registry,
    httpRequests: new Counter({
      name: 'companion_http_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'companion_http_request_duration_seconds',
      help: 'Time to answer HTTP requests, by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15],
      registers,
    }),
    optoutsAccepted: new Counter({ name: 'companion_optouts_accepted_total', help: 'Opt-outs accepted (202) by the webhook', registers }),
    optoutsSubmitted: new Counter({ name: 'companion_optouts_submitted_total', help: 'Opt-outs the upstream accepted', registers }),
    optoutsFailed: new Counter({
      name: 'companion_optouts_failed_total',
      help: 'Opt-outs marked failed, by why',
      labelNames: ['reason'] as const,
      registers,
    }),
    optoutsRetried: new Counter({ name: 'companion_optouts_retried_total', help: 'Opt-out attempts that will be tried again', registers }),
    templateSends: new Counter({
      name: 'companion_template_sends_total',
      help: 'Queued WhatsApp template sends: queued (202), sent, failed, and retried (a try that will be made again)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    whatsappSends: new Counter({
      name: 'companion_whatsapp_sends_total',
      help: 'WhatsApp template sends, by outcome (sent, or failed with the status RapidPro was answered)',
      labelNames: ['outcome', 'status'] as const,
      registers,
    }),
    partnerDuration: new Histogram({
      name: 'companion_partner_request_duration_seconds',
      help: 'Calls to partner APIs, by partner and outcome (2xx, 4xx, 5xx, timeout, error)',
      labelNames: ['partner', 'outcome'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
      registers,
    }),
    /** Reports the queue's job counts by state in companion_queue_jobs, and whether they could be read in companion_queue_up. */
    watchQueue(name: string, counts: () => Promise<Record<string, number>>): void {
      queues.set(name, counts);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Counts and times every answer, labelled by the route pattern (never the raw path: ids would explode the series). */
export function httpMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const stop = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}`.replace(/(.)\/$/, '$1') : 'unmatched';
      const labels = { method: req.method, route, status: String(res.statusCode) };
      metrics.httpRequests.inc(labels);
      stop(labels);
    });
    next();
  };
}

/** Outcome label of a partner call: the status class, or how it failed without an answer. */
export function partnerOutcome(status: number | undefined, errorCode?: string): string {
  if (status !== undefined) return `${Math.floor(status / 100)}xx`;
  return errorCode === 'ETIMEDOUT' ? 'timeout' : 'error';
}
