import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config';
import pg from 'pg';

/** `postgresql://user:secret@host/db` → `postgresql://user:***@host/db`: safe for logs and error messages. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Start-up cannot go on: the message says what is wrong and how to fix it. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/**
 * Stops start-up when PostgreSQL cannot be reached. `migrate` creates a missing database, so for it a
 * server that answers "database does not exist" (3D000) is reachable enough.
 */
export async function checkPostgres(url: string, options: { databaseMayBeMissing?: boolean } = {}): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    if (options.databaseMayBeMissing && (error as { code?: unknown }).code === '3D000') return;
    throw new StartupError(
      `PostgreSQL is not reachable at ${maskUrl(url)} (${(error as Error).message}). ` +
        'Start it (for example `pg_ctlcluster 15 main start`) or set DATABASE_URL.',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A Redis connection of any supported topology: a plain server, a Sentinel-managed primary, or a Cluster. */
export type RedisConnection = Redis | Cluster;

/** Where the connection goes, for messages: the URL, the sentinels or the cluster nodes (passwords masked). */
export function describeRedis(redis: Config['redis']): string {
  const list = (nodes: ReadonlyArray<{ host: string; port: number }>) => nodes.map((node) => `${node.host}:${node.port}`).join(',');
  if (redis.sentinels) return `sentinels ${list(redis.sentinels)} (primary "${redis.sentinelName}")`;
  if (redis.clusterNodes) return `cluster ${list(redis.clusterNodes)}`;
  return maskUrl(redis.url);
}

/**
 * A Redis connection for the configured topology. REDIS_URL supplies the credentials, TLS (rediss://)
 * and database in every topology; its host is used only without sentinels or cluster nodes.
 * `options` differ by use: BullMQ workers need `maxRetriesPerRequest: null`; the web process wants
 * commands to fail fast while Redis is away.
 */
export function createRedis(redis: Config['redis'], options: RedisOptions = {}): RedisConnection {
  const url = new URL(redis.url);
  const common: RedisOptions = {
    username: decodeURIComponent(url.username) || undefined,
    password: decodeURIComponent(url.password) || undefined,
    db: Number(url.pathname.slice(1)) || 0,
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    lazyConnect: true,
    connectTimeout: 5000,
    ...options,
  };
  if (redis.clusterNodes) {
    const { enableOfflineQueue, ...nodeOptions } = common;
    return new Cluster(
      redis.clusterNodes.map((node) => ({ ...node })),
      { redisOptions: nodeOptions, enableOfflineQueue, lazyConnect: true },
    );
  }
  if (redis.sentinels) {
    return new Redis({ ...common, sentinels: redis.sentinels.map((node) => ({ ...node })), name: redis.sentinelName });
  }
  return new Redis({ ...common, host: url.hostname, port: Number(url.port) || 6379 });
}

/** Opens a Redis connection (see createRedis) and waits until it answers. */
export async function connectRedis(redis: Config['redis'], options: RedisOptions = {}): Promise<RedisConnection> {
  const connection = createRedis(redis, options);
  // Listening keeps ioredis from printing "Unhandled error event" with a stack, and its first error
  // is the cause (connect ECONNREFUSED …): connect() itself rejects only with "Connection is closed."
  let firstError: Error | undefined;
  const noteError = (error: Error) => (firstError ??= error);
  connection.on('error', noteError);
  try {
    await connection.connect();
    await connection.ping();
    // From here on the connection's users handle its errors (see logConnectionErrors); an abandoned
    // connection keeps the listener, for whatever it still reports while it closes.
    connection.off('error', noteError);
    return connection;
  } catch (error) {
    connection.disconnect();
    throw new StartupError(
      `Redis is not reachable at ${describeRedis(redis)} (${(firstError ?? (error as Error)).message}). ` +
        'Start it (for example `redis-server --daemonize yes`) or set REDIS_URL.',
    );
  }
}

/** How often the same connection error is logged again while it lasts. */
const REPEAT_ERROR_LOG_MS = 60_000;

/**
 * Logs a connection's errors (a Redis that went away retries every second or two) without a line
 * per retry: an error is logged when it differs from the last one, or a minute after it was.
 * Listening also keeps an unhandled 'error' event from crashing the process or reaching stderr.
 */
export function logConnectionErrors(
  emitter: { on(event: 'error', listener: (error: Error) => void): unknown },
  logger: { warn(obj: object, msg: string): void },
  source: string,
): void {
  let lastMessage: string | undefined;
  let lastLoggedAt = 0;
  emitter.on('error', (error: Error) => {
    const now = Date.now();
    if (error.message === lastMessage && now - lastLoggedAt < REPEAT_ERROR_LOG_MS) return;
    lastMessage = error.message;
    lastLoggedAt = now;
    logger.warn({ err: error, source }, `${source}: connection error`);
  });
}
