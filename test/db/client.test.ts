import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createDatabase, hotQuery, isDatabaseUnavailable, Prisma } from '../../src/db/client';
import { createOptoutStore } from '../../src/optouts/store';
import { createWhatsappSendStore, type WhatsappSendRecord } from '../../src/whatsapp/store';
import { queuedOptoutRow } from '../helpers/app';
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

  it('prepares each hot statement once per connection, whatever the size of its batch', async () => {
    // One connection: pg_prepared_statements lists what this session has prepared.
    const db = createDatabase({ url: TEST_DATABASE_URL, poolSize: 1 });
    try {
      const prepared = async () =>
        (await hotQuery<{ name: string }>(db, Prisma.sql`SELECT name FROM pg_prepared_statements WHERE name LIKE 'hot\_%' ORDER BY name`)).map((row) => row.name);
      const client = await db.apiClient.create({ data: { name: `prepared-${randomUUID()}`, keyId: randomUUID(), secretHash: 'unused' } });
      const optouts = createOptoutStore(db);
      const optout = () => queuedOptoutRow(client.id);
      const sends = createWhatsappSendStore(db, { lingerMs: 0, maxBatch: 3 });
      const send = (): WhatsappSendRecord => ({
        createdAt: new Date(),
        api: 'cloud',
        recipient: '+27820001001',
        template: 'prepared',
        language: 'en',
        contactUuid: null,
        apiClientId: null,
        upstreamStatus: 200,
        status: 200,
        messageId: null,
        error: null,
        durationMs: 1,
      });

      expect((await optouts.insertUnlessDuplicate([optout()])).inserted).toHaveLength(1);
      await sends.record(send());
      const afterOneRow = await prepared();
      expect((await optouts.insertUnlessDuplicate([optout(), optout(), optout()])).inserted).toHaveLength(3);
      await Promise.all([send(), send(), send(), send()].map((row) => sends.record(row)));
      // The first of the four goes alone, the other three together: batches of 1 and 3, one statement.
      expect(await prepared()).toEqual(afterOneRow);
      expect(afterOneRow).toHaveLength(3);
    } finally {
      await db.$disconnect();
    }
  });

  it('prepares nothing when told not to (for poolers that cannot keep prepared statements)', async () => {
    const db = createDatabase({ url: TEST_DATABASE_URL, poolSize: 1, preparedStatements: false });
    try {
      expect(await hotQuery(db, Prisma.sql`SELECT name FROM pg_prepared_statements`)).toEqual([]);
      expect(await hotQuery(db, Prisma.sql`SELECT name FROM pg_prepared_statements`)).toEqual([]);
    } finally {
      await db.$disconnect();
    }
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
