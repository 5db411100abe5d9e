import { Redis, type RedisOptions } from 'ioredis';
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

export async function checkPostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new StartupError(
      `PostgreSQL is not reachable at ${maskUrl(url)} (${(error as Error).message}). ` +
        'Start it (for example `pg_ctlcluster 15 main start`) or set DATABASE_URL.',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Opens a Redis connection and waits until it answers. `options` differ by use: BullMQ workers need
 * `maxRetriesPerRequest: null`; the web process wants commands to fail fast while Redis is away.
 */
export async function connectRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 5000, ...options });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (error) {
    redis.disconnect();
    throw new StartupError(
      `Redis is not reachable at ${maskUrl(url)} (${(error as Error).message}). ` +
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
