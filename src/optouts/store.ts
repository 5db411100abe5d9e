import type { Database } from '../db/client';
import type { Prisma } from '../generated/prisma/client';
import type { AttemptOutcome, Optout, OptoutAttempt, OptoutStatus } from '../generated/prisma/client';

export type { Optout, OptoutAttempt, OptoutStatus, AttemptOutcome };

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

/** What an attempt does to its opt-out: it stays queued (to retry), or ends submitted or failed. */
export type AttemptResult = { status: 'queued' | 'submitted' | 'failed'; lastError: string | null };

export function createOptoutStore(db: Database) {
  return {
    findById: (id: string) => db.optout.findUnique({ where: { id } }),

    findByIdempotencyKey: (key: string) => db.optout.findUnique({ where: { idempotencyKey: key } }),

    findQueuedForContact: (contactUuid: string) => db.optout.findFirst({ where: { contactUuid, status: 'queued' } }),

    /** Throws a unique violation when the key was used already or the contact has a queued opt-out. */
    create: (optout: NewOptout) =>
      db.optout.create({ data: { ...optout, contactFields: (optout.contactFields as Prisma.InputJsonObject | null) ?? undefined } }),

    /**
     * Takes the opt-out for one worker until `leaseUntil`; null when it is not queued or another
     * worker holds it. The lease is what keeps two workers from submitting the same opt-out at once.
     */
    async claim(id: string, leaseUntil: Date): Promise<Optout | null> {
      const now = new Date();
      const { count } = await db.optout.updateMany({
        where: { id, status: 'queued', OR: [{ leaseUntil: null }, { leaseUntil: { lt: now } }] },
        data: { leaseUntil },
      });
      return count === 1 ? db.optout.findUnique({ where: { id } }) : null;
    },

    /** Records one attempt and its effect on the opt-out in one transaction, and lets go of the lease. */
    async recordAttempt(id: string, attempt: AttemptRecord, result: AttemptResult): Promise<void> {
      const now = new Date();
      await db.$transaction([
        db.optoutAttempt.create({ data: { optoutId: id, ...attempt } }),
        db.optout.updateMany({
          // Staff may have cancelled it meanwhile: their decision stands.
          where: { id, status: 'queued' },
          data: {
            attempts: attempt.number,
            status: result.status,
            lastError: result.lastError,
            leaseUntil: null,
            updatedAt: now,
            ...(result.status === 'submitted' ? { submittedAt: now } : {}),
          },
        }),
      ]);
    },

    attemptsOf: (id: string) => db.optoutAttempt.findMany({ where: { optoutId: id }, orderBy: { number: 'asc' } }),

    /** One page of queued opt-out ids received before `createdBefore`, in id order after `afterId`. */
    queuedIds: async (createdBefore: Date, afterId: string | undefined, limit: number): Promise<string[]> => {
      const rows = await db.optout.findMany({
        where: { status: 'queued', createdAt: { lt: createdBefore }, ...(afterId ? { id: { gt: afterId } } : {}) },
        orderBy: { id: 'asc' },
        select: { id: true },
        take: limit,
      });
      return rows.map((row) => row.id);
    },
  };
}

export type OptoutStore = ReturnType<typeof createOptoutStore>;
