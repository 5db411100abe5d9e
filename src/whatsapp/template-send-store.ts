import { hotQuery, isUniqueViolation, Prisma, type Database } from '../db/client';
import { queuedRowsIn } from '../jobs/reconciler';
import type { TemplateSend, WhatsappApi } from '../generated/prisma/client';
import { TemplateSendStatus } from '../generated/prisma/enums';
import type { TemplateRequest } from './schemas';
import { sendConditions, type SendFilter } from './send-filter';

export type { TemplateSend };
export { TemplateSendStatus };

export const TEMPLATE_SEND_STATUSES = Object.values(TemplateSendStatus);

/** Only staff move a send out of these: back to queued. */
export const RETRYABLE_SEND_STATUSES: TemplateSendStatus[] = ['failed', 'cancelled'];
/** What staff may cancel. */
export const CANCELLABLE_SEND_STATUSES: TemplateSendStatus[] = ['queued', 'failed'];

/** What the staff pages filter queued sends by. */
export interface TemplateSendFilter extends SendFilter {
  status?: TemplateSendStatus;
}

export interface NewTemplateSend {
  id: string;
  api: WhatsappApi;
  request: TemplateRequest;
  apiClientId: string;
  idempotencyKey: string | null;
}

/** What one try came to: sent (with the API's message id), failed for good, or queued for another try after retryInMs. */
export type SendResult =
  | { status: 'sent'; messageId: string | null; upstreamStatus: number | null }
  | { status: 'failed'; lastError: string; upstreamStatus: number | null }
  | { status: 'queued'; lastError: string; upstreamStatus: number | null; retryInMs: number };

/** A send a worker holds: what it sends, and its count of tries with this one. */
export type ClaimedSend = Pick<TemplateSend, 'id' | 'attempts' | 'priorAttempts'> & { request: TemplateRequest };

/** Rows a lease covers: a send whose lease has ended is no longer under way (its worker died). */
const NOT_LEASED = Prisma.sql`(lease_until IS NULL OR lease_until <= now())`;

export function createTemplateSendStore(db: Database) {
  const findByKey = (apiClientId: string, idempotencyKey: string) =>
    db.templateSend.findUnique({ where: { apiClientId_idempotencyKey: { apiClientId, idempotencyKey } } });

  return {
    /** Commits a new send; with a key its API client used before, returns that earlier send instead. */
    async insert(send: NewTemplateSend): Promise<{ created: TemplateSend } | { earlier: TemplateSend }> {
      const { request } = send;
      try {
        const created = await db.templateSend.create({
          data: {
            id: send.id,
            api: send.api,
            recipient: request.to,
            template: request.name,
            language: request.language,
            message: { ...request },
            contactUuid: request.contactUuid,
            apiClientId: send.apiClientId,
            idempotencyKey: send.idempotencyKey,
          },
        });
        return { created };
      } catch (error) {
        if (!isUniqueViolation(error) || send.idempotencyKey === null) throw error;
        const earlier = await findByKey(send.apiClientId, send.idempotencyKey);
        // Gone between the two statements (its client deleted, say): nothing to answer with but the error.
        if (!earlier) throw error;
        return { earlier };
      }
    },

    findById: (id: string) => db.templateSend.findUnique({ where: { id } }),

    findByKey,

    /**
     * Takes a queued send for one try, counting the try and marking it under way (leased) before the
     * API is called: another worker, or this one after a crash, takes it only once the lease ends. Null
     * when it is not queued or another worker holds it. This and record are the worker's statements for
     * every send: SQL of our own through hotQuery.
     */
    async claim(id: string, leaseMs: number): Promise<ClaimedSend | null> {
      const rows = await hotQuery<ClaimedSend>(db, Prisma.sql`
        UPDATE template_sends SET attempts = attempts + 1, lease_until = now() + ${leaseMs} * interval '1 millisecond', updated_at = now()
        WHERE id = ${id}::uuid AND status = 'queued' AND ${NOT_LEASED}
        RETURNING id, attempts, prior_attempts AS "priorAttempts", message AS request`);
      return rows[0] ?? null;
    },

    /**
     * Writes what a try came to and ends its lease: the send stays queued for another try, or ends sent
     * or failed. Staff may have cancelled it meanwhile (past the lease): their decision stands.
     */
    async record(id: string, result: SendResult): Promise<void> {
      const messageId = result.status === 'sent' ? result.messageId : null;
      const lastError = result.status === 'sent' ? null : result.lastError;
      const retryInMs = result.status === 'queued' ? result.retryInMs : 0;
      // next_attempt_at by PostgreSQL's clock, as the reconciler reads it: a Redis that lost the job must not shorten the wait.
      await hotQuery(db, Prisma.sql`
        UPDATE template_sends SET status = ${result.status}::template_send_status, upstream_status = ${result.upstreamStatus},
          message_id = ${messageId}, last_error = ${lastError}, lease_until = NULL, updated_at = now(),
          sent_at = CASE WHEN ${result.status} = 'sent' THEN now() END,
          next_attempt_at = CASE WHEN ${result.status} = 'queued' THEN now() + ${retryInMs} * interval '1 millisecond' END
        WHERE id = ${id}::uuid AND status = 'queued'`);
    },

    /** The staff pages' view of the sends, newest first. */
    async list(filter: TemplateSendFilter, page: { offset: number; limit: number }): Promise<{ total: number; rows: TemplateSend[] }> {
      const where: Prisma.TemplateSendWhereInput = { ...sendConditions(filter), ...(filter.status ? { status: filter.status } : {}) };
      const [total, rows] = await Promise.all([
        db.templateSend.count({ where }),
        db.templateSend.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'asc' }], skip: page.offset, take: page.limit }),
      ]);
      return { total, rows };
    },

    /** Those of `ids` that staff may retry (failed or cancelled), oldest first. */
    async retryableAmong(ids: string[]): Promise<string[]> {
      const rows = await db.templateSend.findMany({
        where: { id: { in: ids }, status: { in: RETRYABLE_SEND_STATUSES } },
        orderBy: { createdAt: 'asc' },
        select: { id: true },
      });
      return rows.map((row) => row.id);
    },

    /** The reconciler's pages of queued sends. */
    queued: queuedRowsIn(db, 'template_sends'),

    /**
     * Puts a failed or cancelled send back in the queue for a fresh round of WHATSAPP_SEND_MAX_ATTEMPTS
     * tries. False when it is in neither status (any more).
     */
    async requeue(id: string): Promise<boolean> {
      const count = await db.$executeRaw`
        UPDATE template_sends SET status = 'queued', prior_attempts = attempts, cancel_reason = NULL, next_attempt_at = NULL, updated_at = now()
        WHERE id = ${id}::uuid AND status = ANY(${RETRYABLE_SEND_STATUSES}::template_send_status[])`;
      return count === 1;
    },

    /**
     * Staff chose not to send it; only a queued or failed send can be cancelled, and not while a worker
     * has it under way (the API may accept it this moment). False otherwise.
     */
    async cancel(id: string, reason: string): Promise<boolean> {
      const count = await db.$executeRaw`
        UPDATE template_sends SET status = 'cancelled', cancel_reason = ${reason}, updated_at = now()
        WHERE id = ${id}::uuid AND status = ANY(${CANCELLABLE_SEND_STATUSES}::template_send_status[]) AND ${NOT_LEASED}`;
      return count === 1;
    },
  };
}

export type TemplateSendStore = ReturnType<typeof createTemplateSendStore>;
