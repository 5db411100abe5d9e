import { createHash } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient, Prisma } from '../generated/prisma/client';

/**
 * Prisma over a node-postgres pool, and the pool itself for the hot statements (see hotQuery), with
 * whether they may be prepared.
 */
export type Database = PrismaClient & { readonly $pool: pg.Pool; readonly $preparedStatements: boolean };
export { Prisma };

export function createDatabase(options: { url: string; poolSize: number; preparedStatements?: boolean }): Database {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize, connectionTimeoutMillis: 5000 });
  // An idle connection that PostgreSQL drops (a restart) is an 'error' on the pool, fatal without a
  // listener; Prisma adds its own only once it has run a query, and hotQuery may come first. The pool
  // drops that connection and the next statement opens another (or reports why it cannot).
  pool.on('error', () => undefined);
  // Prisma's $disconnect ends the pool, but only once Prisma itself has connected: a process that
  // ran hotQuery alone would keep the pool's idle connections (and itself) alive for another 10 s.
  const client = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  const disconnectPrisma = client.$disconnect.bind(client);
  return Object.assign(client, {
    $pool: pool,
    $preparedStatements: options.preparedStatements ?? true,
    async $disconnect() {
      await disconnectPrisma();
      if (!pool.ending) await pool.end();
    },
  });
}

/**
 * Runs one statement of our own straight on the pool Prisma uses. For the hot paths only (the
 * webhook intake, the workers' claims and records, the WhatsApp send record): Prisma's raw
 * queries cost about twice the CPU of node-postgres for the same statement. Rows come back as
 * node-postgres reads them (timestamptz as Date, jsonb parsed, int4 as number), which for the
 * columns these statements answer is what Prisma's reads give (a test compares the two).
 *
 * Each statement is prepared once per connection, named after its text: planned at every execution,
 * the intake's statement cost PostgreSQL twice the CPU. So a hot statement's text must not depend on
 * the data: a batch goes in as arrays (unnest), never as a list of placeholders per row. Behind a
 * pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21, or without
 * max_prepared_statements) DATABASE_PREPARED_STATEMENTS=false plans each execution instead.
 */
export async function hotQuery<Row = never>(db: Database, statement: Prisma.Sql): Promise<Row[]> {
  const { text, values } = statement;
  try {
    const result = await db.$pool.query(db.$preparedStatements ? { name: preparedStatementName(text), text, values } : { text, values });
    return result.rows as Row[];
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) throw new DatabaseUnreachable(error as Error);
    throw error;
  }
}

/** A name for the prepared statement of this text: the same text, the same name, in every process. */
function preparedStatementName(text: string): string {
  return `hot_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
}

/** hotQuery could not reach PostgreSQL: a network failure, told apart from other services' by where it came from. */
export class DatabaseUnreachable extends Error {
  constructor(cause: Error) {
    super(`database unreachable: ${cause.message}`, { cause });
    this.name = 'DatabaseUnreachable';
  }
}

/** True when a write failed on a unique constraint (Prisma's P2002). */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';
}

/**
 * Prisma's codes for a server that cannot be reached or dropped the connection: P1001 not reachable,
 * P1002 timed out, P1008 socket timeout, P1017 connection closed, P2037 too many connections.
 */
const UNAVAILABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2037']);
/**
 * SQLSTATEs of a server that is going away or not there yet (Prisma reports them as kind "postgres"):
 * class 08 connection exceptions, 57P01 admin shutdown, 57P02 crash shutdown, 57P03 starting up,
 * 53300 too many connections.
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
/**
 * The driver adapter's own kinds for the same: raw queries report them under P2010 ("raw query
 * failed") where model queries get the P1xxx codes above.
 */
const UNAVAILABLE_ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/** Node's codes for a connection that could not be made or was cut. */
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** node-postgres reports a dropped or timed-out connection only by these messages. */
const PG_CONNECTION_MESSAGES = new Set([
  'Connection terminated unexpectedly',
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
]);

/**
 * True when an error means PostgreSQL is not there (down, restarting, unreachable, out of
 * connections) rather than that the query was wrong: the caller may say "try again later".
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    if (UNAVAILABLE_PRISMA_CODES.has(error.code)) return true;
    const cause = (error.meta?.driverAdapterError as { cause?: { kind?: string; code?: string } } | undefined)?.cause;
    if (UNAVAILABLE_ADAPTER_KINDS.has(cause?.kind ?? '')) return true;
    return cause?.kind === 'postgres' && UNAVAILABLE_SQLSTATE.test(cause.code ?? '');
  }
  if (error instanceof DatabaseUnreachable) return true;
  // node-postgres (hotQuery, sessions): a server's error (it carries a severity) with one of the
  // SQLSTATEs above, or a message of its own. Duck-typed, not `instanceof`: node-postgres may hand
  // over errors from another realm under Jest.
  const { code, severity, message } = (error ?? {}) as { code?: unknown; severity?: unknown; message?: unknown };
  if (typeof severity === 'string' && typeof code === 'string' && UNAVAILABLE_SQLSTATE.test(code)) return true;
  return typeof message === 'string' && PG_CONNECTION_MESSAGES.has(message);
}
