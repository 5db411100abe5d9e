import { hotQuery, type Database } from '../db/client';
import { Prisma } from '../generated/prisma/client';
import type { AttemptOutcome, Optout, OptoutAttempt } from '../generated/prisma/client';
import { OptoutStatus } from '../generated/prisma/enums';
import { createGroupCommit } from '../shared/group-commit';
import { toE164, type CountryCode } from '../shared/phone';
import { queuedRowsIn } from '../jobs/reconciler';

export type { Optout, OptoutAttempt, AttemptOutcome };
export { OptoutStatus };

export const OPTOUT_STATUSES = Object.values(OptoutStatus);
/** Only staff move a row out of these: back to queued. */
export const RETRYABLE_STATUSES: OptoutStatus[] = ['failed', 'cancelled'];
/** What staff may cancel. */
export const CANCELLABLE_STATUSES: OptoutStatus[] = ['queued', 'failed'];

export interface NewOptout {
  id: string;
  contactUuid: string;
  contactUrn: string | null;
  contactFields: Record<string, unknown> | null;
  reasonCategory: string | null;
  reasonValue: string | null;
  flowUuid: string | null;
  runUuid: string | null;
  apiClientId: string;
  idempotencyKey: string | null;
}

export interface AttemptRecord {
  number: number;
  partner: string;
  startedAt: Date;
  durationMs: number;
  outcome: AttemptOutcome;
  httpStatus: number | null;
  response: string | null;
  error: string | null;
}

/** What the staff pages filter opt-outs by. */
export interface OptoutFilter {
  status?: OptoutStatus;
  /** Received on or after. */
  receivedFrom?: Date;
  /** Received before. */
  receivedBefore?: Date;
  /** An opt-out or contact UUID, or a phone number: any of its digits in a row, or with wholeNumbersOnly the whole number. */
  search?: string;
  /**
   * A number in `search` finds only the whole number, with its country code: for staff who see
   * numbers masked, to whom matching part of one would give its hidden digits away one at a time.
   */
  wholeNumbersOnly?: boolean;
  /** DEFAULT_COUNTRY: how a whole number written without its country code is read. */
  defaultCountry: CountryCode;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function whereOf(filter: OptoutFilter): Prisma.OptoutWhereInput {
  const where: Prisma.OptoutWhereInput = {};
  if (filter.status) where.status = filter.status;
  if (filter.receivedFrom || filter.receivedBefore) where.createdAt = { gte: filter.receivedFrom, lt: filter.receivedBefore };
  const search = filter.search?.trim();
  if (search && UUID.test(search)) {
    where.OR = [{ id: search.toLowerCase() }, { contactUuid: search.toLowerCase() }];
  } else if (search && filter.wholeNumbersOnly && /\d/.test(search)) {
    // Anything short of a whole number finds nothing.
    const number = toE164(search, filter.defaultCountry);
    where.contactUrn = { in: number ? urnsHolding(number) : [] };
  } else if (search) {
    // Leading zeros dropped, so that a national number (082…) finds the international URN (27 82…).
    const digits = search.replace(/\D/g, '').replace(/^0+/, '');
    where.contactUrn = { contains: digits || search };
  }
  return where;
}

/** The URNs that can hold this number: tel: or whatsapp:, with its + (as RapidPro writes tel:+27…) or without (whatsapp:27…). */
function urnsHolding(number: string): string[] {
  return ['tel', 'whatsapp'].flatMap((scheme) => [`${scheme}:${number}`, `${scheme}:${number.slice(1)}`]);
}

/** Opt-outs per day (UTC), keyed YYYY-MM-DD. */
export type DailyCounts = Map<string, number>;

/** What an attempt does to its opt-out: it stays queued (to retry after retryInMs), or ends submitted or failed. */
export type AttemptResult =
  | { status: 'queued'; lastError: string | null; retryInMs: number }
  | { status: 'submitted' | 'failed'; lastError: string | null };

/** An idempotency key as its API client sent it: keys of different clients never meet. */
export interface ClientKey {
  apiClientId: string;
  idempotencyKey: string;
}

/** Every column of `optouts` under its model name, so that raw queries answer rows of the Optout model's shape. */
export const OPTOUT_COLUMNS = Prisma.raw(
  [
    'id',
    'contact_uuid AS "contactUuid"',
    'contact_urn AS "contactUrn"',
    'contact_fields AS "contactFields"',
    'reason_category AS "reasonCategory"',
    'reason_value AS "reasonValue"',
    'flow_uuid AS "flowUuid"',
    'run_uuid AS "runUuid"',
    'api_client_id AS "apiClientId"',
    'idempotency_key AS "idempotencyKey"',
    'status::text AS status',
    'attempts',
    'prior_attempts AS "priorAttempts"',
    'last_error AS "lastError"',
    'cancel_reason AS "cancelReason"',
    'created_at AS "createdAt"',
    'updated_at AS "updatedAt"',
    'submitted_at AS "submittedAt"',
    'lease_until AS "leaseUntil"',
    'next_attempt_at AS "nextAttemptAt"',
  ].join(', '),
);

/**
 * The opt-outs (whole rows) that make new ones duplicates, or refuse them: the same API client's
 * idempotency keys, or queued for the same contacts.
 */
export function duplicatesOf(keys: ClientKey[], contactUuids: string[]): Prisma.Sql {
  // Two lookups, each through its unique index, joined by id: an OR of the two conditions would read the whole table.
  return Prisma.sql`
    SELECT * FROM optouts WHERE id IN (
      SELECT optouts.id
      FROM unnest(${keys.map((key) => key.apiClientId)}::uuid[], ${keys.map((key) => key.idempotencyKey)}::text[]) AS keys (api_client_id, idempotency_key)
      JOIN optouts USING (api_client_id, idempotency_key)
      UNION ALL
      SELECT id FROM optouts WHERE contact_uuid = ANY(${contactUuids}::uuid[]) AND status = 'queued')`;
}

/**
 * No worker holds the opt-out: it has no lease, or its lease is over by PostgreSQL's clock, the one
 * every worker shares (their own may disagree).
 */
const NOT_LEASED = Prisma.sql`(lease_until IS NULL OR lease_until <= now())`;

interface Claim {
  id: string;
  leaseMs: number;
}

interface AttemptWrite {
  id: string;
  attempt: AttemptRecord;
  result: AttemptResult;
}

/**
 * The worker's two statements per try, each shared by the tries of the moment (group commit, as the
 * intake does): with many jobs at once, one UPDATE claims them all and one statement records their
 * attempts, instead of a round trip each. SQL of our own through hotQuery, like the intake's. Times
 * go as ISO text, as everywhere in our own SQL.
 */
function workerStatements(db: Database) {
  // Batches, hotQuery and prepared statements: each earns its place at high concurrency (docs/PERFORMANCE.md).
  const claim = createGroupCommit<Claim, Optout | null>({
    slots: 2,
    maxBatch: 200,
    async write(claims) {
      const rows = await hotQuery<Optout>(db, Prisma.sql`
        UPDATE optouts SET lease_until = now() + claim.lease_ms * interval '1 millisecond'
        FROM unnest(${claims.map((item) => item.id)}::uuid[], ${claims.map((item) => item.leaseMs)}::int[]) AS claim (optout_id, lease_ms)
        WHERE optouts.id = claim.optout_id AND optouts.status = 'queued' AND ${NOT_LEASED}
        RETURNING ${OPTOUT_COLUMNS}`);
      // An opt-out claimed twice in one batch is taken once: the first claim gets it.
      const byId = new Map(rows.map((row) => [row.id, row]));
      return claims.map((item) => {
        const row = byId.get(item.id) ?? null;
        byId.delete(item.id);
        return row;
      });
    },
  });

  const recordAttempt = createGroupCommit<AttemptWrite, void>({
    slots: 2,
    maxBatch: 200,
    async write(writes) {
      const now = new Date().toISOString();
      const column = <T>(pick: (write: AttemptWrite) => T) => writes.map(pick);
      await hotQuery(db, Prisma.sql`
        WITH incoming AS (
          SELECT * FROM unnest(
            ${column((write) => write.id)}::uuid[], ${column((write) => write.attempt.number)}::int[],
            ${column((write) => write.attempt.partner)}::text[], ${column((write) => write.attempt.startedAt.toISOString())}::text[],
            ${column((write) => write.attempt.durationMs)}::int[], ${column((write) => write.attempt.outcome)}::text[],
            ${column((write) => write.attempt.httpStatus)}::int[], ${column((write) => write.attempt.response)}::text[],
            ${column((write) => write.attempt.error)}::text[], ${column((write) => write.result.status)}::text[],
            ${column((write) => write.result.lastError)}::text[], ${column((write) => ('retryInMs' in write.result ? write.result.retryInMs : null))}::int[]
          ) AS incoming (optout_id, number, partner, started_at, duration_ms, outcome, http_status, response, error, new_status, new_last_error, retry_ms)
        ), attempt AS (
          INSERT INTO optout_attempts (id, optout_id, number, partner, started_at, duration_ms, outcome, http_status, response, error)
          SELECT gen_random_uuid(), optout_id, number, partner, started_at::timestamptz, duration_ms, outcome::attempt_outcome, http_status, response, error
          FROM incoming
        )
        -- The count moves with every attempt written, so that the next try (a staff retry's, say) takes the
        -- next number. Staff may have cancelled it meanwhile (past the lease): their decision stands.
        UPDATE optouts SET
          attempts = incoming.number, lease_until = NULL, updated_at = ${now}::timestamptz,
          status = CASE WHEN optouts.status = 'queued' THEN incoming.new_status::optout_status ELSE optouts.status END,
          last_error = CASE WHEN optouts.status = 'queued' THEN incoming.new_last_error ELSE optouts.last_error END,
          submitted_at = CASE WHEN optouts.status = 'queued' AND incoming.new_status = 'submitted' THEN ${now}::timestamptz ELSE optouts.submitted_at END,
          -- By PostgreSQL's clock, as the reconciler reads it: a Redis that lost the job must not shorten the wait.
          next_attempt_at = CASE WHEN optouts.status = 'queued' AND incoming.new_status = 'queued'
            THEN now() + incoming.retry_ms * interval '1 millisecond' ELSE NULL END
        FROM incoming
        WHERE optouts.id = incoming.optout_id`);
      return writes.map(() => undefined);
    },
  });

  return {
    claim: (id: string, leaseMs: number): Promise<Optout | null> => claim({ id, leaseMs }),
    recordAttempt,
  };
}

export function createOptoutStore(db: Database) {
  const { claim, recordAttempt } = workerStatements(db);
  return {
    findById: (id: string) => db.optout.findUnique({ where: { id } }),

    /**
     * The webhook's write, in one round trip: finds the earlier opt-outs that make any of these
     * duplicates (as findDuplicates) and inserts the others. A row that would still break a unique
     * rule (another process inserted its duplicate since the statement's snapshot) is skipped, not an
     * error: an opt-out in neither answer lost that race. SQL of our own through hotQuery: this is the
     * webhook's hot path (the columns are checked against the model by a test).
     */
    async insertUnlessDuplicate(optouts: NewOptout[]): Promise<{ earlier: Optout[]; inserted: Optout[] }> {
      const keys = optouts.flatMap(({ apiClientId, idempotencyKey }) => (idempotencyKey === null ? [] : [{ apiClientId, idempotencyKey }]));
      const rows = await hotQuery<Optout & { source: 'earlier' | 'inserted' }>(
        db,
        Prisma.sql`
        WITH earlier AS (${duplicatesOf(keys, optouts.map((row) => row.contactUuid))}),
        inserted AS (
          INSERT INTO optouts (id, contact_uuid, contact_urn, contact_fields, reason_category, reason_value, flow_uuid, run_uuid, api_client_id, idempotency_key)
          SELECT id, contact_uuid, contact_urn, contact_fields::jsonb, reason_category, reason_value, flow_uuid, run_uuid, api_client_id, idempotency_key
          FROM unnest(
            ${optouts.map((row) => row.id)}::uuid[], ${optouts.map((row) => row.contactUuid)}::uuid[],
            ${optouts.map((row) => row.contactUrn)}::text[], ${optouts.map((row) => (row.contactFields ? JSON.stringify(row.contactFields) : null))}::text[],
            ${optouts.map((row) => row.reasonCategory)}::text[], ${optouts.map((row) => row.reasonValue)}::text[],
            ${optouts.map((row) => row.flowUuid)}::text[], ${optouts.map((row) => row.runUuid)}::text[],
            ${optouts.map((row) => row.apiClientId)}::uuid[], ${optouts.map((row) => row.idempotencyKey)}::text[]
          ) AS incoming (id, contact_uuid, contact_urn, contact_fields, reason_category, reason_value, flow_uuid, run_uuid, api_client_id, idempotency_key)
          WHERE NOT EXISTS (
            SELECT FROM earlier
            WHERE (earlier.api_client_id = incoming.api_client_id AND earlier.idempotency_key = incoming.idempotency_key)
              OR (earlier.contact_uuid = incoming.contact_uuid AND earlier.status = 'queued'))
          ON CONFLICT DO NOTHING
          RETURNING *)
        SELECT 'earlier' AS source, ${OPTOUT_COLUMNS} FROM earlier
        UNION ALL
        SELECT 'inserted' AS source, ${OPTOUT_COLUMNS} FROM inserted`,
      );
      const answer = { earlier: [] as Optout[], inserted: [] as Optout[] };
      for (const { source, ...row } of rows) answer[source].push(row);
      return answer;
    },

    /** Opt-outs that make these new ones duplicates (or refuse them): the same client's idempotency keys, or queued for the same contacts. */
    findDuplicates: (keys: ClientKey[], contactUuids: string[]) =>
      db.$queryRaw<Optout[]>`SELECT ${OPTOUT_COLUMNS} FROM (${duplicatesOf(keys, contactUuids)}) AS earlier`,

    /**
     * Takes the opt-out for one worker for `leaseMs`; null when it is not queued or another worker
     * holds it. The lease is what keeps two workers from submitting the same opt-out at once, so it is
     * taken and compared by PostgreSQL's clock: workers' clocks may disagree.
     */
    claim,

    /**
     * Records one attempt and its effect on the opt-out, and lets go of the lease: one statement, so
     * both or neither are written. The opt-out counts the attempt whatever its status; its status
     * (with last_error and submitted_at) changes only while it is still queued.
     */
    recordAttempt: (id: string, attempt: AttemptRecord, result: AttemptResult): Promise<void> => recordAttempt({ id, attempt, result }),

    async search(filter: OptoutFilter, page: { offset: number; limit: number }): Promise<{ total: number; rows: Optout[] }> {
      const where = whereOf(filter);
      const [total, rows] = await Promise.all([
        db.optout.count({ where }),
        db.optout.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'asc' }], skip: page.offset, take: page.limit }),
      ]);
      return { total, rows };
    },

    count: (filter: OptoutFilter) => db.optout.count({ where: whereOf(filter) }),

    /** Ids of the opt-outs that match, oldest first, limited to these statuses (and to `ids` when given). */
    async idsWithStatus(statuses: OptoutStatus[], scope: { filter?: OptoutFilter; ids?: string[]; limit?: number }): Promise<string[]> {
      const where: Prisma.OptoutWhereInput = { ...(scope.filter && whereOf(scope.filter)), status: { in: statuses } };
      if (scope.ids) where.id = { in: scope.ids };
      const rows = await db.optout.findMany({ where, orderBy: { createdAt: 'asc' }, select: { id: true }, take: scope.limit });
      return rows.map((row) => row.id);
    },

    /**
     * Puts a failed or cancelled opt-out back in the queue for a fresh round of OPTOUT_MAX_ATTEMPTS
     * tries; its attempts so far stay recorded. False when it is in neither status (any more).
     * Throws a unique violation when its contact has another queued opt-out.
     */
    async requeue(id: string): Promise<boolean> {
      const optout = await db.optout.findUnique({ where: { id }, select: { attempts: true } });
      if (!optout) return false;
      const { count } = await db.optout.updateMany({
        where: { id, status: { in: RETRYABLE_STATUSES }, attempts: optout.attempts },
        data: { status: 'queued', priorAttempts: optout.attempts, cancelReason: null, nextAttemptAt: null, updatedAt: new Date() },
      });
      return count === 1;
    },

    /**
     * Staff chose not to send it; only a queued or failed opt-out can be cancelled, and not while a
     * worker holds it (it may be with the partner this moment). False otherwise: a queued opt-out it
     * left queued was held.
     */
    async cancel(id: string, reason: string): Promise<boolean> {
      const count = await db.$executeRaw`
        UPDATE optouts SET status = 'cancelled', cancel_reason = ${reason}, updated_at = now()
        WHERE id = ${id}::uuid AND status = ANY(${CANCELLABLE_STATUSES}::optout_status[]) AND ${NOT_LEASED}`;
      return count === 1;
    },

    async countsByStatus(): Promise<Record<OptoutStatus, number>> {
      const groups = await db.optout.groupBy({ by: ['status'], _count: { _all: true } });
      const counts: Record<OptoutStatus, number> = { queued: 0, submitted: 0, failed: 0, cancelled: 0 };
      for (const group of groups) counts[group.status] = group._count._all;
      return counts;
    },

    /**
     * Per day since `since`: opt-outs received, and opt-outs now failed by the day they failed
     * (their last update; a failed opt-out changes only when staff act on it).
     */
    async dailyCounts(since: Date): Promise<{ received: DailyCounts; failed: DailyCounts }> {
      // As text: a Date parameter would reach PostgreSQL as a timestamp without time zone.
      const from = since.toISOString();
      const [received, failed] = await Promise.all([
        db.$queryRaw<Array<{ day: string; n: number }>>`
          SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*)::int AS n
          FROM optouts WHERE created_at >= ${from}::timestamptz GROUP BY 1`,
        db.$queryRaw<Array<{ day: string; n: number }>>`
          SELECT to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*)::int AS n
          FROM optouts WHERE status = 'failed' AND updated_at >= ${from}::timestamptz GROUP BY 1`,
      ]);
      const toMap = (rows: Array<{ day: string; n: number }>) => new Map(rows.map((row) => [row.day, row.n]));
      return { received: toMap(received), failed: toMap(failed) };
    },

    oldestQueued: () => db.optout.findFirst({ where: { status: 'queued' }, orderBy: { createdAt: 'asc' } }),

    attemptsOf: (id: string) => db.optoutAttempt.findMany({ where: { optoutId: id }, orderBy: { number: 'asc' } }),

    /** The reconciler's pages of queued opt-outs. */
    queuedOptouts: queuedRowsIn(db, 'optouts'),
  };
}

export type OptoutStore = ReturnType<typeof createOptoutStore>;
