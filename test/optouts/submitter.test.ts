import { setTimeout } from 'node:timers/promises';
import pg from 'pg';
import { createApiClientService } from '../../src/api-clients/service';
import { createDatabase, isDatabaseUnavailable } from '../../src/db/client';
import type { Logger } from '../../src/ops/logger';
import { createMetrics } from '../../src/ops/metrics';
import { createOptoutStore, type OptoutStore } from '../../src/optouts/store';
import { createOptoutSubmitter, type OptoutSubmitter, type SubmitOutcome } from '../../src/optouts/submitter';
import { ANSWER_LIMIT_BYTES } from '../../src/partners/http-client';
import { createOpenhimClient } from '../../src/partners/openhim';
import { createRapidProClient, type RapidProClient } from '../../src/partners/rapidpro';
import { eventually, expireLease, queuedOptoutRow } from '../helpers/app';
import { TEST_DATABASE_URL } from '../helpers/env';
import { OPENHIM_ROUTE, PARTNER_SECRETS, startFakePartner, type FakeAnswer, type FakePartner } from '../helpers/fake-partner';
import { captureLogs } from '../helpers/logs';
import { startOwnPostgres } from '../helpers/postgres-server';

/**
 * One try at a time, straight through the submitter, with the real store and a fake OpenHIM: what each
 * try records and how long it asks the queue to wait. The worker tests show the same through BullMQ.
 */

const db = createDatabase({ url: TEST_DATABASE_URL, poolSize: 4 });
const store = createOptoutStore(db);
const { logger } = captureLogs();
const metrics = createMetrics();
const policy = { maxAttempts: 4, backoffMs: 1000, maxBackoffMs: 6 * 3600_000 };
let partner: FakePartner;
let apiClientId: string;
/** OpenHIM's answers per opt-out (eid), so that tests never see each other's traffic. */
const answers = new Map<string, FakeAnswer[]>();

beforeAll(async () => {
  partner = await startFakePartner();
  partner.on(OPENHIM_ROUTE, (request) => answers.get((request.body as { eid: string }).eid)?.shift() ?? { status: 202, body: { status: 'ok' } });
  apiClientId = (await createApiClientService(db).create(`submitter-${Date.now()}`)).id;
});
afterAll(async () => {
  await partner.stop();
  await db.$disconnect();
});

function createSubmitter(options: { rapidpro?: RapidProClient; leaseMs?: number; store?: OptoutStore; logger?: Logger; partnerTimeoutMs?: number } = {}) {
  const log = options.logger ?? logger;
  const client = { timeoutMs: options.partnerTimeoutMs ?? 2000, logger: log, metrics };
  return createOptoutSubmitter({
    store: options.store ?? store,
    rapidpro: options.rapidpro ?? createRapidProClient({ url: partner.url, token: PARTNER_SECRETS.rapidproToken, ...client }),
    upstream: {
      mode: 'openhim',
      client: createOpenhimClient({
        url: partner.url,
        username: PARTNER_SECRETS.openhimUsername,
        password: PARTNER_SECRETS.openhimPassword,
        ...client,
      }),
      swt: { whatsapp: 7, sms: 1 },
    },
    policy,
    leaseMs: options.leaseMs ?? 10_000,
    defaultCountry: 'ZA',
    logger: log,
    metrics,
  });
}

/** A queued opt-out whose webhook carried the contact, so that OpenHIM is the only partner asked. */
async function queuedOptout(...openhimAnswers: FakeAnswer[]): Promise<string> {
  const row = { ...queuedOptoutRow(apiClientId), contactUrn: 'tel:+27820001001', contactFields: { facility_code: '123456' } };
  await store.insertUnlessDuplicate([row]);
  answers.set(row.id, openhimAnswers);
  return row.id;
}

/** Expects a retry on the backoff curve at this try of the round: 500 to 1000 ms (half of it random) at the first, twice that at the next, and so on. */
function expectRetryAtTry(outcome: SubmitOutcome, tries: number): Extract<SubmitOutcome, { kind: 'retry' }> {
  expect(outcome.kind).toBe('retry');
  const retry = outcome as Extract<SubmitOutcome, { kind: 'retry' }>;
  const full = policy.backoffMs * 2 ** (tries - 1);
  expect(retry.delayMs).toBeGreaterThanOrEqual(full / 2);
  expect(retry.delayMs).toBeLessThanOrEqual(full);
  return retry;
}

describe('the opt-out submitter', () => {
  let submitter: OptoutSubmitter;
  beforeAll(() => {
    submitter = createSubmitter();
  });

  it('starts the backoff afresh with the fresh round of a staff retry', async () => {
    const id = await queuedOptout(...Array.from({ length: policy.maxAttempts + 1 }, () => ({ status: 503 })));
    for (let tries = 1; tries < policy.maxAttempts; tries += 1) {
      expectRetryAtTry(await submitter.submit(id), tries);
    }
    expect(await submitter.submit(id)).toEqual({ kind: 'finished', status: 'failed' });
    expect(await store.requeue(id)).toBe(true);
    expectRetryAtTry(await submitter.submit(id), 1);
    expect((await store.findById(id))?.attempts).toBe(policy.maxAttempts + 1);
  });

  it('backs off a 429 without Retry-After on the exponential curve, pausing every worker for one base backoff', async () => {
    const id = await queuedOptout(...Array.from({ length: policy.maxAttempts - 1 }, () => ({ status: 429 })));
    for (let tries = 1; tries < policy.maxAttempts; tries += 1) {
      expect(expectRetryAtTry(await submitter.submit(id), tries).pauseAllMs).toBe(policy.backoffMs);
    }
  });

  it('pauses every worker for what a 429 asks, while the opt-out keeps to its own curve, never sooner', async () => {
    const id = await queuedOptout({ status: 503 }, { status: 503 }, { status: 429, headers: { 'retry-after': '1' } });
    await submitter.submit(id);
    await submitter.submit(id);
    expect(expectRetryAtTry(await submitter.submit(id), 3).pauseAllMs).toBe(1000);
    const asksLonger = await queuedOptout({ status: 429, headers: { 'retry-after': '60' } });
    expect(await submitter.submit(asksLonger)).toMatchObject({ kind: 'retry', delayMs: 60_000, pauseAllMs: 60_000 });
  });

  it('fails at once on a 4xx too large to read, and retries a 2xx or 5xx one, recording the status', async () => {
    const tooLarge = (status: number) => ({ status, rawBody: 'x'.repeat(ANSWER_LIMIT_BYTES + 1) });
    const [rejected, accepted, busy] = await Promise.all([queuedOptout(tooLarge(400)), queuedOptout(tooLarge(200)), queuedOptout(tooLarge(503))]);
    expect(await submitter.submit(rejected)).toEqual({ kind: 'finished', status: 'failed' });
    expect(await submitter.submit(accepted)).toMatchObject({ kind: 'retry' });
    expect(await submitter.submit(busy)).toMatchObject({ kind: 'retry' });
    const attempts = await Promise.all([rejected, accepted, busy].map(async (id) => (await store.attemptsOf(id))[0]));
    expect(attempts.map((attempt) => [attempt?.outcome, attempt?.httpStatus])).toEqual([
      ['permanent', 400],
      ['transient', 200],
      ['transient', 503],
    ]);
    expect(attempts[0]?.error).toBe('openhim answered HTTP 400 with an answer larger than 1048576 bytes');
  });

  it('counts the try of an opt-out that staff cancelled past its lease, so that a staff retry numbers the next one after it', async () => {
    // The worker's lease ends while OpenHIM takes its time (a worker frozen that long), and staff cancel it meanwhile.
    const slowSubmitter = createSubmitter({ leaseMs: 200 });
    const id = await queuedOptout({ status: 202, body: { status: 'ok' }, delayMs: 1000 });
    const sendsOf = () => partner.received(OPENHIM_ROUTE).filter((request) => (request.body as { eid: string }).eid === id);
    const submitting = slowSubmitter.submit(id);
    await eventually(async () => (sendsOf().length === 1 ? true : undefined));
    await setTimeout(400);
    await store.cancel(id, 'staff decided');
    expect(await submitting).toEqual({ kind: 'finished', status: 'submitted' });
    expect(await store.findById(id)).toMatchObject({ status: 'cancelled', attempts: 1, leaseUntil: null });

    expect(await store.requeue(id)).toBe(true);
    expect(await slowSubmitter.submit(id)).toEqual({ kind: 'finished', status: 'submitted' });
    expect(await store.findById(id)).toMatchObject({ status: 'submitted', attempts: 2, priorAttempts: 1, cancelReason: null });
    expect((await store.attemptsOf(id)).map((attempt) => [attempt.number, attempt.outcome])).toEqual([
      [1, 'success'],
      [2, 'success'],
    ]);
    expect(sendsOf()).toHaveLength(2);
  });

  it('waits at least what Retry-After asks on any transient answer, not only a 429', async () => {
    const id = await queuedOptout({ status: 503, headers: { 'retry-after': '120' } });
    const retry = await submitter.submit(id);
    expect(retry).toMatchObject({ kind: 'retry', delayMs: 120_000 });
    expect(retry).not.toHaveProperty('pauseAllMs');
  });
});

describe('the opt-out submitter meeting an error that is no partner failure', () => {
  /** A queued opt-out without contact details, so that RapidPro (here the one failing) is asked. */
  async function needingLookup(): Promise<string> {
    const row = queuedOptoutRow(apiClientId);
    await store.insertUnlessDuplicate([row]);
    return row.id;
  }
  const failingLookup = (error: Error) => createSubmitter({ rapidpro: { getContact: () => Promise.reject(error) } });

  it('records a defect of its own as a transient attempt, and gives up after OPTOUT_MAX_ATTEMPTS', async () => {
    const submitter = failingLookup(new TypeError("Cannot read properties of undefined (reading 'urns')"));
    const id = await needingLookup();
    for (let tries = 1; tries < policy.maxAttempts; tries += 1) expectRetryAtTry(await submitter.submit(id), tries);
    expect(await submitter.submit(id)).toEqual({ kind: 'finished', status: 'failed' });
    const description = "companion error (TypeError) while working with rapidpro: see the worker's log";
    expect(await store.findById(id)).toMatchObject({ attempts: policy.maxAttempts, lastError: `gave up after ${policy.maxAttempts} attempts: ${description}` });
    const attempts = await store.attemptsOf(id);
    expect(attempts.map((attempt) => [attempt.partner, attempt.outcome, attempt.httpStatus])).toEqual(
      Array.from({ length: policy.maxAttempts }, () => ['rapidpro', 'transient', null]),
    );
    expect(attempts[0]?.error).toBe(description);
  });

  it('never records a failure for an opt-out the partner accepted: a failed write of its success is left to BullMQ', async () => {
    // On the last try the policy allows, the success's write meets another transaction's uncommitted attempt of
    // the same number and waits on it, until its connection's lock_timeout (1 s) ends the wait with PostgreSQL's 55P03.
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set('options', '-c lock_timeout=1000');
    const impatient = createDatabase({ url: url.toString(), poolSize: 2 });
    const blocker = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await blocker.connect();
    try {
      const submitter = createSubmitter({ store: createOptoutStore(impatient) });
      const id = await queuedOptout(...Array.from({ length: policy.maxAttempts - 1 }, () => ({ status: 503 })));
      for (let tries = 1; tries < policy.maxAttempts; tries += 1) expectRetryAtTry(await submitter.submit(id), tries);
      const blockerPid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await blocker.query('BEGIN');
      await blocker.query(
        "INSERT INTO optout_attempts (id, optout_id, number, partner, started_at, duration_ms, outcome) VALUES (gen_random_uuid(), $1, $2, 'openhim', now(), 0, 'success')",
        [id, policy.maxAttempts],
      );
      const submitting = submitter.submit(id).then(
        () => undefined,
        (error: unknown) => error,
      );
      // Once the write waits on the blocker, the blocker gives way: after the lock timeout ended that wait, well
      // before another write's wait (recording a failure, say) would time out too.
      await eventually(async () => ((await blocker.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [blockerPid])).rowCount ? true : undefined), 15000, 10);
      await setTimeout(1500);
      await blocker.query('ROLLBACK');
      const failure = await submitting;
      expect(failure).toMatchObject({ code: '55P03', message: expect.stringMatching(/lock timeout/) });
      expect(isDatabaseUnavailable(failure)).toBe(false); // not retried while the lease lasts: rethrown at once
      expect(await store.findById(id)).toMatchObject({ status: 'queued', attempts: policy.maxAttempts - 1, leaseUntil: expect.any(Date) });
      expect((await store.attemptsOf(id)).map((attempt) => attempt.outcome)).toEqual(Array.from({ length: policy.maxAttempts - 1 }, () => 'transient'));

      // BullMQ's next try, once the lease is over, sends it again under the same eid and records it.
      await expireLease(db, id);
      expect(await submitter.submit(id)).toEqual({ kind: 'finished', status: 'submitted' });
      expect(await store.findById(id)).toMatchObject({ status: 'submitted', attempts: policy.maxAttempts });
      expect((await store.attemptsOf(id)).map((attempt) => attempt.outcome)).toEqual([...Array.from({ length: policy.maxAttempts - 1 }, () => 'transient'), 'success']);
    } finally {
      await blocker.end();
      await impatient.$disconnect();
    }
  });

  it('writes a success again while PostgreSQL is away and the lease lasts, then leaves it to BullMQ and the lease', async () => {
    // A PostgreSQL of this test's own, stopped while OpenHIM takes its time over the opt-out.
    const own = await startOwnPostgres();
    const ownDb = createDatabase({ url: await own.createDatabase('submitter'), poolSize: 2 });
    try {
      const ownStore = createOptoutStore(ownDb);
      const ownClientId = (await createApiClientService(ownDb).create('submitter-away')).id;
      const row = { ...queuedOptoutRow(ownClientId), contactUrn: 'tel:+27820001001', contactFields: { facility_code: '123456' } };
      await ownStore.insertUnlessDuplicate([row]);
      answers.set(row.id, [{ status: 202, body: { status: 'ok' }, delayMs: 2500 }]);
      const { logger: ownLogger, lines } = captureLogs();
      const leaseMs = 4000;
      const submitter = createSubmitter({ store: ownStore, leaseMs, logger: ownLogger, partnerTimeoutMs: 5000 });
      const started = Date.now();
      const submitting = submitter.submit(row.id).then(
        () => undefined,
        (error: unknown) => error,
      );
      const sent = await eventually(async () => partner.received(OPENHIM_ROUTE).find((request) => (request.body as { eid: string }).eid === row.id));
      await own.stop();
      expect(sent.answeredStatus).toBeUndefined(); // PostgreSQL was gone before OpenHIM accepted it
      const failure = await submitting;
      const gaveUp = Date.now();
      expect(isDatabaseUnavailable(failure)).toBe(true);
      // Written again after 250 ms, 500 more, and so on while the lease lasts (the claim at `started` at the
      // earliest, when OpenHIM was asked at the latest), given up only when the next wait would outlast it.
      const waits = lines
        .map((line) => JSON.parse(line) as { msg?: string; waitMs?: number })
        .filter((line) => line.msg === 'database unavailable: writing the outcome again shortly')
        .map((line) => line.waitMs!);
      expect(waits.length).toBeGreaterThanOrEqual(1);
      expect(waits).toEqual(waits.map((_wait, index) => 250 * 2 ** index));
      expect(gaveUp).toBeLessThan(sent.receivedAt + leaseMs);
      expect(gaveUp + 2 * waits.at(-1)!).toBeGreaterThanOrEqual(started + leaseMs);

      await own.start();
      expect(await ownStore.attemptsOf(row.id)).toEqual([]);
      expect(await ownStore.findById(row.id)).toMatchObject({ status: 'queued', attempts: 0, leaseUntil: expect.any(Date) });
    } finally {
      await ownDb.$disconnect().catch(() => undefined);
      await own.destroy();
    }
  }, 60_000);
});
