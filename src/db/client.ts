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
