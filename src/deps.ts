import pg from 'pg';
import type { Store as SessionStore } from 'express-session';
import { type Config, missingOptoutSettings, missingWhatsappSettings } from './config';
import { createDatabase, type Database } from './db/client';
import { connectRedis, type RedisConnection } from './db/connections';
import { createLogger, type Logger } from './ops/logger';
import { createMetrics, type Metrics } from './ops/metrics';
import { createApiClientService, type ApiClientService } from './api-clients/service';
import { createOptoutStore, type OptoutStore } from './optouts/store';
import { OPTOUT_JOBS } from './optouts/queue';
import { createRowQueue, type RowQueue } from './jobs/queue';
import { createOptoutService, type OptoutService } from './optouts/service';
import { createRapidProClient } from './partners/rapidpro';
import { createOpenhimClient } from './partners/openhim';
import { createDhis2TrackerClient } from './partners/dhis2';
import { createOptoutSubmitter, type OptoutSubmitter } from './optouts/submitter';
import { createWhatsappClient, type WhatsappClient } from './partners/whatsapp';
import { createWhatsappSendLog, createWhatsappSendStore, type WhatsappSendLog } from './whatsapp/store';
import { createWhatsappService, type WhatsappService } from './whatsapp/service';
import { createTemplateSendStore, type TemplateSendStore } from './whatsapp/template-send-store';
import { createTemplateSendService, TEMPLATE_SEND_JOBS, type TemplateSendService } from './whatsapp/template-sends';
import { createTemplateSender, type TemplateSender } from './whatsapp/template-sender';
import { createAuditLog, type AuditLog } from './audit/log';
import { createStaffService, type StaffService } from './auth/staff';
import { createSessionStore } from './auth/sessions';

/** Everything the web process, the worker, the CLI and the tests are built from. */
export interface Deps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  db: Database;
  /** Shared by the web process and the queue producer; commands fail fast while Redis is away. */
  redis: RedisConnection;
  apiClients: ApiClientService;
  optoutStore: OptoutStore;
  optoutQueue: RowQueue;
  optouts: OptoutService;
  /** Undefined while opt-out settings are missing: opt-outs then wait in the queue. */
  optoutSubmitter: OptoutSubmitter | undefined;
  whatsapp: WhatsappService;
  templateSendStore: TemplateSendStore;
  templateSendQueue: RowQueue;
  templateSends: TemplateSendService;
  /** Undefined while WhatsApp settings are missing: queued sends are then refused (503). */
  templateSender: TemplateSender | undefined;
  staff: StaffService;
  audit: AuditLog;
  /** Staff sign-in sessions, in PostgreSQL. */
  sessionStore: SessionStore;
  /** The record of WhatsApp sends, as the staff pages read it. */
  whatsappSends: WhatsappSendLog;
  close(): Promise<void>;
}

export interface DepsOverrides {
  logger?: Logger;
}

function createSubmitter(config: Config, logger: Logger, metrics: Metrics, store: OptoutStore): OptoutSubmitter | undefined {
  const missing = missingOptoutSettings(config);
  if (missing.length > 0) {
    logger.warn({ missing }, `opt-outs are accepted but not submitted until these are set: ${missing.join(', ')}`);
    return undefined;
  }
  const timeoutMs = config.partnerTimeoutMs;
  const { rapidpro, dhis2 } = config;
  const rapidproClient =
    rapidpro.url && rapidpro.token ? createRapidProClient({ url: rapidpro.url, token: rapidpro.token, timeoutMs, logger, metrics }) : undefined;
  if (!rapidproClient) {
    logger.warn('RAPIDPRO_URL/RAPIDPRO_TOKEN are unset: opt-outs without contact.fields (or a tel:/whatsapp: URN) wait in the queue until they are set');
  }
  const upstream =
    dhis2.mode === 'openhim'
      ? {
          mode: 'openhim' as const,
          client: createOpenhimClient({
            url: dhis2.openhim.url!,
            username: dhis2.openhim.username!,
            password: dhis2.openhim.password!,
            timeoutMs,
            logger,
            metrics,
          }),
          swt: dhis2.openhim.swt,
        }
      : {
          mode: 'tracker' as const,
          client: createDhis2TrackerClient({ ...dhis2.tracker, url: dhis2.tracker.url!, timeoutMs, logger, metrics }),
          settings: {
            program: dhis2.tracker.program!,
            programStage: dhis2.tracker.programStage!,
            orgUnit: dhis2.tracker.orgUnit,
            dataElements: dhis2.tracker.dataElements,
          },
        };
  // One try makes at most two partner calls, each cut off at the timeout; the lease outlasts both
  // and the few database writes around them. A worker killed mid-try holds its opt-outs this long.
  const leaseMs = 2 * timeoutMs + 10_000;
  return createOptoutSubmitter({
    store,
    rapidpro: rapidproClient,
    upstream,
    policy: config.optouts,
    leaseMs,
    defaultCountry: config.defaultCountry,
    logger,
    metrics,
  });
}

/** The WhatsApp client; undefined while settings are `missing` (missingWhatsappSettings). */
function createWhatsappClientFor(config: Config, missing: readonly string[], logger: Logger, metrics: Metrics): WhatsappClient | undefined {
  const { whatsapp } = config;
  const observers = { logger, metrics };
  if (missing.length > 0) return undefined;
  if (whatsapp.api === 'cloud') {
    const settings = { ...whatsapp, api: 'cloud' as const, url: whatsapp.url!, phoneNumberId: whatsapp.phoneNumberId!, token: whatsapp.token! };
    return createWhatsappClient(settings, observers);
  }
  const settings = { ...whatsapp, api: 'onprem' as const, url: whatsapp.url!, namespace: whatsapp.namespace!, token: whatsapp.token! };
  return createWhatsappClient(settings, observers);
}

/** Longer than any command of the web process or the queue producer takes while Redis is well. */
const REDIS_COMMAND_TIMEOUT_MS = 2000;

export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  const metrics = createMetrics();
  // Requests must not wait on Redis: a command fails at once while it is disconnected (no offline
  // queue), and after REDIS_COMMAND_TIMEOUT_MS while it is connected but does not answer.
  const redis = await connectRedis(config.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
  const db = createDatabase({ url: config.databaseUrl, poolSize: config.databasePoolSize, preparedStatements: config.databasePreparedStatements });
  const optoutStore = createOptoutStore(db);
  const optoutQueue = createRowQueue({ kind: OPTOUT_JOBS, connection: redis, prefix: config.queuePrefix, maxAttempts: config.optouts.maxAttempts, logger });
  const templateSendQueue = createRowQueue({
    kind: TEMPLATE_SEND_JOBS,
    connection: redis,
    prefix: config.queuePrefix,
    maxAttempts: config.templateSends.maxAttempts,
    logger,
  });
  for (const queue of [optoutQueue, templateSendQueue]) {
    metrics.watchQueue(queue.bullQueue.name, () => queue.bullQueue.getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized'));
  }
  const whatsappMissing = missingWhatsappSettings(config);
  if (whatsappMissing.length > 0) {
    logger.warn({ missing: whatsappMissing }, `WhatsApp templates answer 503 until these are set: ${whatsappMissing.join(', ')}`);
  }
  const whatsappClient = createWhatsappClientFor(config, whatsappMissing, logger, metrics);
  const templateSendStore = createTemplateSendStore(db);
  // connect-pg-simple gets a small pg pool of its own, so that staff pages never wait for (nor take)
  // the connections the webhook and the worker use; it connects only when a staff page is used.
  const sessionPool = new pg.Pool({ connectionString: config.databaseUrl, max: 4, connectionTimeoutMillis: 5000 });
  sessionPool.on('error', (error) => logger.warn({ err: error }, 'session database connection dropped'));
  return {
    config,
    logger,
    metrics,
    db,
    redis,
    apiClients: createApiClientService(db),
    optoutStore,
    optoutQueue,
    optouts: createOptoutService({ store: optoutStore, queue: optoutQueue, logger, metrics }),
    optoutSubmitter: createSubmitter(config, logger, metrics, optoutStore),
    staff: createStaffService(db, config.staffSignIn),
    audit: createAuditLog(db),
    sessionStore: createSessionStore(sessionPool, logger),
    whatsapp: createWhatsappService({
      api: config.whatsapp.api,
      client: whatsappClient,
      missing: whatsappMissing,
      store: createWhatsappSendStore(db),
      metrics,
    }),
    templateSendStore,
    templateSendQueue,
    templateSends: createTemplateSendService({
      api: config.whatsapp.api,
      missing: whatsappMissing,
      store: templateSendStore,
      queue: templateSendQueue,
      logger,
      metrics,
    }),
    templateSender: whatsappClient && createTemplateSender({
      store: templateSendStore,
      client: whatsappClient,
      policy: config.templateSends,
      // The on-prem API's contacts check and send share one timeout; past it, the writes around the call
      // get as long as BullMQ gives a silent worker (WORKER_LOCK_MS): a write held up that long repeats the send.
      leaseMs: config.whatsapp.timeoutMs + config.jobs.workerLockMs,
      logger,
      metrics,
    }),
    whatsappSends: createWhatsappSendLog(db),
    async close() {
      await optoutQueue.close();
      await templateSendQueue.close();
      await sessionPool.end();
      redis.disconnect();
      await db.$disconnect();
    },
  };
}
