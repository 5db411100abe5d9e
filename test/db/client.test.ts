import pg from 'pg';
import { createDatabase, hotQuery, isDatabaseUnavailable, Prisma } from '../../src/db/client';
import { TEST_DATABASE_URL } from '../helpers/env';
import { closedPortUrl } from '../whatsapp/support';

describe('hotQuery', () => {
  it('answers rows, and survives PostgreSQL dropping its idle connection before Prisma ran anything', async () => {
    const url = new URL(TEST_DATABASE_URL);
    const applicationName = `hotquery-${Date.now()}`;
    url.searchParams.set('application_name', applicationName);
    const db = createDatabase({ url: url.toString(), poolSize: 1 });
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      expect(await hotQuery<{ answer: number }>(db, Prisma.sql`SELECT ${41}::int + 1 AS answer`)).toEqual([{ answer: 42 }]);
      // What a restart does to an idle connection: an 'error' on the pool, which must not be fatal.
      const { rowCount } = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      expect(rowCount).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await hotQuery<{ answer: number }>(db, Prisma.sql`SELECT 7 AS answer`)).toEqual([{ answer: 7 }]);
    } finally {
      await admin.end();
      await db.$disconnect();
    }
  });

  it('leaves no connection open after $disconnect, whether Prisma ran a query or hotQuery alone did', async () => {
    const hotOnly = createDatabase({ url: TEST_DATABASE_URL, poolSize: 2 });
    const both = createDatabase({ url: TEST_DATABASE_URL, poolSize: 2 });
    await hotQuery(hotOnly, Prisma.sql`SELECT 1`);
    await Promise.all([hotQuery(both, Prisma.sql`SELECT 1`), both.$queryRaw`SELECT 1`]);
    await Promise.all([hotOnly.$disconnect(), both.$disconnect()]);
    // Otherwise the idle connections, and the process, would stay up until the pool's idle timeout.
    expect([hotOnly.$pool.totalCount, hotOnly.$pool.ended, both.$pool.totalCount, both.$pool.ended]).toEqual([0, true, 0, true]);
  });

  it('fails as "database unavailable" when nothing listens, and as itself for a wrong statement', async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.port = new URL(await closedPortUrl()).port;
    const unreachable = createDatabase({ url: url.toString(), poolSize: 1 });
    const db = createDatabase({ url: TEST_DATABASE_URL, poolSize: 1 });
    try {
      const refused = await hotQuery(unreachable, Prisma.sql`SELECT 1`).catch((error: unknown) => error);
      expect(isDatabaseUnavailable(refused)).toBe(true);
      const wrong = await hotQuery(db, Prisma.sql`SELECT * FROM no_such_table`).catch((error: unknown) => error);
      expect(wrong).toMatchObject({ code: '42P01' });
      expect(isDatabaseUnavailable(wrong)).toBe(false);
    } finally {
      await Promise.all([unreachable.$disconnect(), db.$disconnect()]);
    }
  });
});
