import { randomUUID } from 'node:crypto';
import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { isUniqueViolation } from '../db/client';
import { AppError } from '../errors';
import type { OptoutWebhook } from './schemas';
import type { NewOptout, Optout, OptoutStore } from './store';
import { enqueueRetried, type RowQueue } from '../jobs/queue';
import { createInFlight } from '../shared/in-flight';
import { createOptoutIntake, judgeAgainst, type AcceptResult } from './intake';

export interface AcceptContext {
  apiClientId: string;
  idempotencyKey: string | undefined;
  simulated: boolean;
}

export type { AcceptResult };

/** What a staff retry did, per opt-out id. */
export interface RetryReport {
  /** Back in the queue. */
  retried: string[];
  /** Left as they were: their contact has another opt-out in the queue already. */
  contactHasQueued: string[];
  /** Left as they were: no longer failed or cancelled (submitted or queued meanwhile), or unknown. */
  notRetryable: string[];
}

export function createOptoutService(deps: { store: OptoutStore; queue: RowQueue; logger: Logger; metrics: Metrics }) {
  const { store, queue, logger, metrics } = deps;

  const intake = createOptoutIntake({ store, queue, metrics });

  /** Accepts still running: a client that hung up does not stop them, and shutdown waits for them. */
  const inFlight = createInFlight();

  /**
   * The flow simulator's answer: what the same request would get (a repeat answers with its earlier
   * opt-out, a key reused for another contact is refused), read but never written.
   */
  async function simulate(item: Pick<NewOptout, 'id' | 'apiClientId' | 'idempotencyKey' | 'contactUuid'>): Promise<AcceptResult> {
    const { id, apiClientId, idempotencyKey, contactUuid } = item;
    const keys = idempotencyKey === null ? [] : [{ apiClientId, idempotencyKey }];
    const judged = judgeAgainst(item, await store.findDuplicates(keys, [contactUuid]));
    return judged ?? { kind: 'created', optout: { id, contactUuid, status: 'queued' } };
  }

  /**
   * Commits the opt-out, then hands it to the queue (both through the intake, with the webhooks that
   * arrive at the same moment). A failed hand-over is not raised: the row is committed, and once Redis
   * is back the reconciler enqueues every queued row that has no live job.
   */
  async function accept(webhook: OptoutWebhook, context: AcceptContext): Promise<AcceptResult> {
    const item = { id: randomUUID(), contactUuid: webhook.contact.uuid, apiClientId: context.apiClientId, idempotencyKey: context.idempotencyKey ?? null };
    if (context.simulated) return simulate(item);
    return intake({
      ...item,
      contactUrn: webhook.contact.urn ?? null,
      contactFields: webhook.contact.fields ?? null,
      reasonCategory: webhook.results?.optout_reason?.category ?? null,
      reasonValue: webhook.results?.optout_reason?.value ?? null,
      flowUuid: webhook.flow?.uuid ?? null,
      runUuid: webhook.run?.uuid ?? null,
    });
  }

  return {
    accept(webhook: OptoutWebhook, context: AcceptContext): Promise<AcceptResult> {
      return inFlight.track(accept(webhook, context));
    },

    /** Resolves once every accept under way has committed and enqueued (or failed). */
    async settle(): Promise<void> {
      await inFlight.settle();
    },

    /** The opt-out, for the API client that created it only: another client's is as unknown as a missing one. */
    async getFor(id: string, apiClientId: string): Promise<Optout | null> {
      const optout = await store.findById(id);
      return optout?.apiClientId === apiClientId ? optout : null;
    },

    /**
     * Staff send failed or cancelled opt-outs again, now. Each is queued on its own, so that one
     * whose contact already has a queued opt-out (the database allows one) leaves the others be.
     */
    async retry(ids: string[]): Promise<RetryReport> {
      const report: RetryReport = { retried: [], contactHasQueued: [], notRetryable: [] };
      for (const id of ids) {
        try {
          (await store.requeue(id) ? report.retried : report.notRetryable).push(id);
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
          report.contactHasQueued.push(id);
        }
      }
      await enqueueRetried(queue, report.retried, logger);
      return report;
    },

    /**
     * Staff decide not to send it. Only a queued or failed opt-out can be cancelled, and not while a
     * worker is sending it: the partner may accept it this moment, and its answer must be recorded.
     */
    async cancel(id: string, reason: string): Promise<Optout> {
      if (!(await store.cancel(id, reason))) {
        const optout = await store.findById(id);
        if (!optout) throw AppError.notFound();
        if (optout.status === 'queued') throw new AppError(409, 'This opt-out is being sent right now: try again in a minute.');
        throw new AppError(409, `This opt-out is ${optout.status}: only a queued or failed opt-out can be cancelled.`);
      }
      return (await store.findById(id))!;
    },
  };
}

export type OptoutService = ReturnType<typeof createOptoutService>;
