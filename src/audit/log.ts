import type { Database } from '../db/client';
import type { Prisma } from '../generated/prisma/client';

/** What staff (or the command line) did, as the audit page names it. */
export const AUDIT_ACTIONS = {
  sign_in: 'signed in',
  sign_in_refused: 'was refused sign-in',
  sign_out: 'signed out',
  optout_retry: 'retried opt-out',
  optout_cancel: 'cancelled opt-out',
  template_send_retry: 'retried queued WhatsApp send',
  template_send_cancel: 'cancelled queued WhatsApp send',
  api_client_create: 'created API client',
  api_client_revoke: 'revoked API client',
  flow_generate: 'generated a RapidPro flow with API client',
  staff_grant: 'granted a role to',
  staff_role_change: 'changed the role of',
  staff_remove: 'removed staff member',
  number_search: 'searched for the phone number',
} as const;

export type AuditAction = keyof typeof AUDIT_ACTIONS;

/** The actor of command-line actions. */
export const CLI_ACTOR = 'cli';

export interface AuditEntry {
  /** The staff member's email, or CLI_ACTOR. */
  actor: string;
  action: AuditAction;
  target?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditFilter {
  actor?: string;
  action?: AuditAction;
}

function rowOf(entry: AuditEntry): Prisma.AuditEventCreateManyInput {
  return { actor: entry.actor, action: entry.action, target: entry.target ?? null, details: entry.details as Prisma.InputJsonObject | undefined };
}

export function createAuditLog(db: Database) {
  return {
    async record(entries: AuditEntry | AuditEntry[]): Promise<void> {
      const list = Array.isArray(entries) ? entries : [entries];
      if (list.length === 0) return;
      await db.auditEvent.createMany({
        data: list.map(rowOf),
      });
    },

    /**
     * Records the entry unless its actor already has `limit` entries of its action within the last
     * `windowMs`; answers whether it was recorded. One actor's entries of one action are counted one
     * at a time (a lock held to the commit), so that requests at once, even to other processes,
     * cannot all pass the count.
     */
    async recordWithinLimit(entry: AuditEntry, rate: { limit: number; windowMs: number }): Promise<boolean> {
      return db.$transaction(async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`audit ${entry.action} ${entry.actor}`}))`;
        const since = new Date(Date.now() - rate.windowMs);
        const made = await tx.auditEvent.count({ where: { actor: entry.actor, action: entry.action, at: { gte: since } } });
        if (made >= rate.limit) return false;
        await tx.auditEvent.create({ data: rowOf(entry) });
        return true;
      });
    },

    /** Everything done to one thing (an opt-out, say), oldest first. */
    about: (target: string) => db.auditEvent.findMany({ where: { target }, orderBy: { at: 'asc' }, take: 200 }),

    /** Newest first. */
    async list(filter: AuditFilter, page: { offset: number; limit: number }) {
      const where: Prisma.AuditEventWhereInput = {
        ...(filter.actor ? { actor: { contains: filter.actor, mode: 'insensitive' } } : {}),
        ...(filter.action ? { action: filter.action } : {}),
      };
      const [total, rows] = await Promise.all([
        db.auditEvent.count({ where }),
        db.auditEvent.findMany({ where, orderBy: [{ at: 'desc' }, { id: 'asc' }], skip: page.offset, take: page.limit }),
      ]);
      return { total, rows };
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
