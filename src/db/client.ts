import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient, Prisma } from '../generated/prisma/client';

export type Database = PrismaClient;
export { Prisma };

export function createDatabase(options: { url: string; poolSize: number }): Database {
  const adapter = new PrismaPg({ connectionString: options.url, max: options.poolSize, connectionTimeoutMillis: 5000 });
  return new PrismaClient({ adapter });
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
  // Not `instanceof Error`: node-postgres may hand over errors from another realm under Jest.
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && PG_CONNECTION_MESSAGES.has(message);
}
