import { Prisma, hotQuery, type Database } from '../db/client';
import { createGroupCommit } from '../shared/group-commit';
import type { WhatsappApi, WhatsappSend } from '../generated/prisma/client';
import { sendConditions, type SendFilter } from './send-filter';

export type { WhatsappApi, WhatsappSend };

/** One send as it is recorded: see WhatsappSend in prisma/schema.prisma for the meaning of each field. */
export type WhatsappSendRecord = Omit<WhatsappSend, 'id'>;

/** How long a send's row waits for others to go in the same INSERT. */
export const SEND_LINGER_MS = 20;

/**
 * One INSERT for many rows, run through hotQuery because the send path is hot: Prisma's createMany
 * costs about four times the CPU per row. The rows go in as one array per column (unnest), so the
 * statement's text is the same whatever their number and PostgreSQL plans it once (see hotQuery).
 * The columns are the WhatsappSend model's (the tests read rows back through it). The time goes as
 * ISO text: a Date parameter reaches PostgreSQL as a timestamp without time zone, which the
 * session's time zone would then shift.
 */
function insertRows(rows: WhatsappSendRecord[]): Prisma.Sql {
  const column = <T>(pick: (row: WhatsappSendRecord) => T) => rows.map(pick);
  return Prisma.sql`INSERT INTO whatsapp_sends (id, created_at, api, recipient, template, language,
      contact_uuid, api_client_id, upstream_status, status, message_id, error, duration_ms)
    SELECT gen_random_uuid(), created_at::timestamptz, api::whatsapp_api, recipient, template, language,
      contact_uuid, api_client_id, upstream_status, status, message_id, error, duration_ms
    FROM unnest(
      ${column((row) => row.createdAt.toISOString())}::text[], ${column((row) => row.api)}::text[],
      ${column((row) => row.recipient)}::text[], ${column((row) => row.template)}::text[], ${column((row) => row.language)}::text[],
      ${column((row) => row.contactUuid)}::uuid[], ${column((row) => row.apiClientId)}::uuid[],
      ${column((row) => row.upstreamStatus)}::int[], ${column((row) => row.status)}::int[],
      ${column((row) => row.messageId)}::text[], ${column((row) => row.error)}::text[], ${column((row) => row.durationMs)}::int[]
    ) AS incoming (created_at, api, recipient, template, language, contact_uuid, api_client_id, upstream_status, status, message_id, error, duration_ms)`;
}

/**
 * Records sends with group commit (shared/group-commit.ts): each caller's promise settles once its
 * row is committed, and one INSERT carries the rows of SEND_LINGER_MS. RapidPro's answer does not wait
 * for the row (whatsapp/service.ts), so the linger costs nobody time and saves an INSERT per send,
 * whose round trip is a noticeable share of the proxy's CPU (docs/PERFORMANCE.md).
 */
export function createWhatsappSendStore(db: Database, options: { slots?: number; maxBatch?: number; lingerMs?: number } = {}) {
  const record = createGroupCommit<WhatsappSendRecord, void>({
    slots: options.slots ?? 1,
    maxBatch: options.maxBatch ?? 500,
    lingerMs: options.lingerMs ?? SEND_LINGER_MS,
    write: async (rows) => {
      await hotQuery(db, insertRows(rows));
      return rows.map(() => undefined);
    },
  });
  return {
    /** Resolves once the row is committed; rejects when it could not be written. */
    record,
  };
}

export type WhatsappSendStore = ReturnType<typeof createWhatsappSendStore>;

/** What the staff pages filter synchronous sends by. */
export interface WhatsappSendFilter extends SendFilter {
  /** sent: RapidPro got a 2xx; failed: anything else. */
  outcome?: 'sent' | 'failed';
}

/** The staff pages' view of the sends, newest first. */
export function createWhatsappSendLog(db: Database) {
  return {
    async list(filter: WhatsappSendFilter, page: { offset: number; limit: number }): Promise<{ total: number; rows: WhatsappSend[] }> {
      const where: Prisma.WhatsappSendWhereInput = sendConditions(filter);
      if (filter.outcome === 'sent') where.status = { gte: 200, lt: 300 };
      if (filter.outcome === 'failed') where.OR = [{ status: { lt: 200 } }, { status: { gte: 300 } }];
      const [total, rows] = await Promise.all([
        db.whatsappSend.count({ where }),
        db.whatsappSend.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'asc' }], skip: page.offset, take: page.limit }),
      ]);
      return { total, rows };
    },
  };
}

export type WhatsappSendLog = ReturnType<typeof createWhatsappSendLog>;
