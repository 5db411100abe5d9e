import { randomUUID } from 'node:crypto';
import { AppError } from '../errors';
import { enqueueRetried, type RowKind, type RowQueue } from '../jobs/queue';
import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { createInFlight } from '../shared/in-flight';
import type { TemplateRequest } from './schemas';
import type { WhatsappApi } from './store';
import type { TemplateSend, TemplateSendStore } from './template-send-store';

/** Queued template sends' jobs: src/jobs holds the queue, the worker and the reconciler they run on. */
export const TEMPLATE_SEND_JOBS: RowKind = { queueName: 'template-sends', jobIdPrefix: 'send', label: 'template send' };

/** A new send (what the 202 shows of it), the earlier one its Idempotency-Key names, or nothing stored: the key names another request. */
export type SendAcceptResult =
  | { kind: 'created'; send: Pick<TemplateSend, 'id' | 'status'> }
  | { kind: 'repeat'; send: TemplateSend }
  | { kind: 'key-reused' };

export interface SendAcceptContext {
  apiClientId: string;
  idempotencyKey: string | undefined;
  simulated: boolean;
}

/** What a staff retry did, per send id. */
export interface SendRetryReport {
  /** Back in the queue. */
  retried: string[];
  /** Left as they were: no longer failed or cancelled, or unknown. */
  notRetryable: string[];
}

/** The request a stored send was made for, as templateRequestFrom made it. */
const requestOf = (send: TemplateSend) => send.message as unknown as TemplateRequest;

/** Whether a repeat with the same Idempotency-Key asks for the same send. */
function sameRequest(a: TemplateRequest, b: TemplateRequest): boolean {
  return (
    a.to === b.to && a.name === b.name && a.language === b.language && a.contactUuid === b.contactUuid &&
    a.params.length === b.params.length && a.params.every((param, index) => param === b.params[index])
  );
}

/**
 * Queued template sends, as the API and the staff pages ask for them: accepted (committed, then
 * handed to the queue), read, retried and cancelled. The worker's side is template-sender.ts.
 */
export function createTemplateSendService(deps: {
  api: WhatsappApi;
  /** WhatsApp settings still missing: sends are refused (503) until they are set, as the synchronous route's are. */
  missing: readonly string[];
  store: TemplateSendStore;
  queue: RowQueue;
  logger: Logger;
  metrics: Metrics;
}) {
  const { store, queue, logger, metrics } = deps;
  /** Accepts still running: a client that hung up does not stop them, and shutdown waits for them. */
  const inFlight = createInFlight();

  /** What the earlier send with this key makes of the request, if there is one. */
  function judgeRepeat(earlier: TemplateSend, request: TemplateRequest): SendAcceptResult {
    return sameRequest(requestOf(earlier), request) ? { kind: 'repeat', send: earlier } : { kind: 'key-reused' };
  }

  async function accept(request: TemplateRequest, context: SendAcceptContext): Promise<SendAcceptResult> {
    if (deps.missing.length > 0) throw new AppError(503, `WhatsApp is not configured: set ${deps.missing.join(', ')}`);
    const { apiClientId } = context;
    const idempotencyKey = context.idempotencyKey ?? null;
    if (context.simulated) {
      // What the same request would get, read but never written.
      const earlier = idempotencyKey === null ? null : await store.findByKey(apiClientId, idempotencyKey);
      return earlier ? judgeRepeat(earlier, request) : { kind: 'created', send: { id: randomUUID(), status: 'queued' } };
    }
    const stored = await store.insert({ id: randomUUID(), api: deps.api, request, apiClientId, idempotencyKey });
    if ('earlier' in stored) return judgeRepeat(stored.earlier, request);
    metrics.templateSends.inc({ outcome: 'queued' });
    // Never fails the request: while Redis is away the worker's reconciler queues it once it is back.
    await queue.handOver([stored.created.id]);
    return { kind: 'created', send: stored.created };
  }

  return {
    /** Commits the send, then hands it to the queue; a repeat of an Idempotency-Key answers with its earlier send. */
    accept(request: TemplateRequest, context: SendAcceptContext): Promise<SendAcceptResult> {
      return inFlight.track(accept(request, context));
    },

    /** Resolves once every accept under way has committed and enqueued (or failed). */
    async settle(): Promise<void> {
      await inFlight.settle();
    },

    /** The send, for the API client that asked for it only: another client's is as unknown as a missing one. */
    async getFor(id: string, apiClientId: string): Promise<TemplateSend | null> {
      const send = await store.findById(id);
      return send?.apiClientId === apiClientId ? send : null;
    },

    /** Staff send failed or cancelled sends again, now, for a fresh round of tries. */
    async retry(ids: string[]): Promise<SendRetryReport> {
      const report: SendRetryReport = { retried: [], notRetryable: [] };
      for (const id of ids) (await store.requeue(id) ? report.retried : report.notRetryable).push(id);
      await enqueueRetried(queue, report.retried, logger);
      return report;
    },

    /**
     * Staff decide not to send it. Only a queued or failed send can be cancelled, and not while a
     * worker has it under way: WhatsApp may accept it this moment, and its answer must be recorded.
     */
    async cancel(id: string, reason: string): Promise<TemplateSend> {
      if (!(await store.cancel(id, reason))) {
        const send = await store.findById(id);
        if (!send) throw AppError.notFound();
        if (send.status === 'queued') throw new AppError(409, 'This send is under way right now: try again in a minute.');
        throw new AppError(409, `This send is ${send.status}: only a queued or failed send can be cancelled.`);
      }
      return (await store.findById(id))!;
    },
  };
}

export type TemplateSendService = ReturnType<typeof createTemplateSendService>;
