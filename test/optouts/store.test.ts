import { createApiClientService } from '../../src/api-clients/service';
import { createDatabase } from '../../src/db/client';
import { Prisma } from '../../src/generated/prisma/client';
import { createOptoutStore, duplicatesOf, type AttemptRecord } from '../../src/optouts/store';
import { expireLease, queuedOptoutRow } from '../helpers/app';
import { TEST_DATABASE_URL } from '../helpers/env';

const db = createDatabase({ url: TEST_DATABASE_URL, poolSize: 4 });
const store = createOptoutStore(db);
let apiClientId: string;

beforeAll(async () => {
  apiClientId = (await createApiClientService(db).create(`store-${Date.now()}`)).id;
});
afterAll(() => db.$disconnect());

async function queued(count: number): Promise<string[]> {
  const rows = Array.from({ length: count }, () => queuedOptoutRow(apiClientId));
  await store.insertUnlessDuplicate(rows);
  return rows.map((row) => row.id);
}

const A_MINUTE = 60_000;

/** Runs `work` in a process whose clock is `skewMs` off (Date alone: timers run as usual). */
async function withClockOff<T>(skewMs: number, work: () => Promise<T>): Promise<T> {
  const timers = ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] as const;
  jest.useFakeTimers({ now: Date.now() + skewMs, doNotFake: [...timers] });
  try {
    return await work();
  } finally {
    jest.useRealTimers();
  }
}


function attempt(overrides: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    number: 1,
    partner: 'openhim',
    startedAt: new Date('2026-11-26T10:15:00.123Z'),
    durationMs: 42,
    outcome: 'success',
    httpStatus: 202,
    response: '{"status":"ok"}',
    error: null,
    ...overrides,
  };
}

describe('the worker statements of the opt-out store', () => {
  it('claims many opt-outs at once, each for its own claim, each once', async () => {
    const ids = await queued(30);
    const leasesMs = ids.map((_id, index) => (index + 1) * A_MINUTE);
    const claimedAt = Date.now();
    // Made together, so that they share statements.
    const claimed = await Promise.all(ids.map((id, index) => store.claim(id, leasesMs[index]!)));
    expect(claimed.map((row) => row?.id)).toEqual(ids);
    const heldForMs = claimed.map((row) => (row?.leaseUntil?.getTime() ?? 0) - claimedAt);
    heldForMs.forEach((held, index) => expect(Math.abs(held - leasesMs[index]!)).toBeLessThan(10_000));
    expect(claimed[0]).toEqual(await db.optout.findUnique({ where: { id: ids[0]! } }));
    // Held: nobody else gets them until the leases end.
    expect(await Promise.all(ids.map((id) => store.claim(id, A_MINUTE)))).toEqual(ids.map(() => null));
  });

  it('gives an opt-out claimed twice at the same moment to one claim only', async () => {
    const [id, ...others] = await queued(5);
    // The first claims take every write slot, so that the six claims of one opt-out wait and go together.
    const claims = await Promise.all([...others.map((other) => store.claim(other, A_MINUTE)), ...Array.from({ length: 6 }, () => store.claim(id!, A_MINUTE))]);
    expect(claims.slice(0, others.length).map((row) => row?.id)).toEqual(others);
    expect(claims.slice(others.length).filter((row) => row !== null)).toHaveLength(1);
  });

  it("takes and compares leases by PostgreSQL's clock, whatever the worker's own clock says", async () => {
    const [id] = (await queued(1)) as [string];
    // A worker whose clock is an hour behind still holds it for a minute…
    const claimed = await withClockOff(-3600_000, () => store.claim(id, A_MINUTE));
    expect(claimed?.leaseUntil?.getTime()).toBeGreaterThan(Date.now() + A_MINUTE / 2);
    // …and one whose clock is an hour ahead cannot take it meanwhile.
    expect(await withClockOff(3600_000, () => store.claim(id, A_MINUTE))).toBeNull();
  });

  it('claims neither an opt-out that is not queued nor one that does not exist', async () => {
    const [cancelled] = await queued(1);
    await store.cancel(cancelled!, 'test');
    const [fresh] = await queued(1);
    const [gone, taken, missing] = await Promise.all([
      store.claim(cancelled!, A_MINUTE),
      store.claim(fresh!, A_MINUTE),
      store.claim('00000000-0000-4000-8000-000000000000', A_MINUTE),
    ]);
    expect([gone, taken?.id, missing]).toEqual([null, fresh, null]);
  });

  it('records many attempts at once, each on its own opt-out, and lets go of the leases', async () => {
    const ids = await queued(3);
    await Promise.all(ids.map((id) => store.claim(id, A_MINUTE)));
    const [submitted, retried, failed] = ids as [string, string, string];
    await Promise.all([
      store.recordAttempt(submitted, attempt(), { status: 'submitted', lastError: null }),
      store.recordAttempt(retried, attempt({ number: 2, outcome: 'transient', httpStatus: 503, error: 'HTTP 503' }), { status: 'queued', lastError: 'HTTP 503', retryInMs: A_MINUTE }),
      store.recordAttempt(failed, attempt({ partner: 'rapidpro', outcome: 'permanent', httpStatus: null, response: null, error: 'no contact' }), {
        status: 'failed',
        lastError: 'no contact',
      }),
    ]);

    const rows = await db.optout.findMany({ where: { id: { in: ids } } });
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(byId.get(submitted)).toMatchObject({ status: 'submitted', attempts: 1, lastError: null, leaseUntil: null, submittedAt: expect.any(Date) });
    expect(byId.get(retried)).toMatchObject({ status: 'queued', attempts: 2, lastError: 'HTTP 503', leaseUntil: null, submittedAt: null });
    // When its next try is due, by PostgreSQL's clock: the reconciler re-queues it with what is left.
    const due = byId.get(retried)!.nextAttemptAt!.getTime() - Date.now();
    expect(due).toBeGreaterThan(A_MINUTE - 10_000);
    expect(due).toBeLessThanOrEqual(A_MINUTE + 1000);
    expect(byId.get(submitted)!.nextAttemptAt).toBeNull();
    expect(byId.get(failed)).toMatchObject({ status: 'failed', attempts: 1, lastError: 'no contact', leaseUntil: null, submittedAt: null });

    const attempts = await db.optoutAttempt.findMany({ where: { optoutId: { in: ids } } });
    const attemptOf = (id: string) => attempts.filter((row) => row.optoutId === id);
    expect(attemptOf(submitted)).toEqual([expect.objectContaining({ ...attempt(), id: expect.any(String) })]);
    expect(attemptOf(retried)).toEqual([expect.objectContaining({ number: 2, outcome: 'transient', httpStatus: 503, error: 'HTTP 503' })]);
    expect(attemptOf(failed)).toEqual([expect.objectContaining({ partner: 'rapidpro', httpStatus: null, response: null, error: 'no contact' })]);
  });

  it('records the attempt of an opt-out that staff cancelled past its lease, counting it but leaving it cancelled', async () => {
    const [cancelled, other] = (await queued(2)) as [string, string];
    await Promise.all([store.claim(cancelled, A_MINUTE), store.claim(other, A_MINUTE)]);
    // Held by its worker, it cannot be cancelled; once the worker froze past its lease, it can.
    expect(await store.cancel(cancelled, 'staff decided')).toBe(false);
    await expireLease(db, cancelled);
    expect(await store.cancel(cancelled, 'staff decided')).toBe(true);
    await Promise.all([
      store.recordAttempt(cancelled, attempt(), { status: 'submitted', lastError: null }),
      store.recordAttempt(other, attempt(), { status: 'submitted', lastError: null }),
    ]);
    expect(await db.optout.findUnique({ where: { id: cancelled } })).toMatchObject({
      status: 'cancelled',
      attempts: 1,
      leaseUntil: null,
      lastError: null,
      submittedAt: null,
    });
    expect(await db.optout.findUnique({ where: { id: other } })).toMatchObject({ status: 'submitted', attempts: 1 });
    expect(await db.optoutAttempt.count({ where: { optoutId: cancelled } })).toBe(1);

    // A staff retry counts from there: its next try is the second.
    expect(await store.requeue(cancelled)).toBe(true);
    expect(await store.claim(cancelled, A_MINUTE)).toMatchObject({ status: 'queued', attempts: 1, priorAttempts: 1 });
  });
});

describe('the intake\'s duplicate look-up', () => {
  it('finds earlier opt-outs through the indexes, never by reading the whole table', async () => {
    const [id] = await queued(1);
    const row = await db.optout.findUniqueOrThrow({ where: { id: id! } });
    const plan = await db.$transaction(async (tx) => {
      // With sequential scans priced out, the planner still takes one only where no index can serve.
      await tx.$executeRaw`SET LOCAL enable_seqscan = off`;
      const lookup = duplicatesOf([{ apiClientId, idempotencyKey: row.idempotencyKey ?? 'none' }], [row.contactUuid]);
      return tx.$queryRaw<Array<{ 'QUERY PLAN': string }>>(Prisma.sql`EXPLAIN ${lookup}`);
    });
    expect(plan.map((line) => line['QUERY PLAN']).join('\n')).not.toMatch(/Seq Scan on optouts/);
  });
});
