import type { Request } from 'express';
import { z } from 'zod';
import type { AuditAction, AuditLog } from '../audit/log';
import { signedIn } from '../auth/guard';
import { AppError } from '../errors';
import { plural } from './format';

/** What operators do to rows a worker sends (opt-outs, queued WhatsApp sends): retry them, or cancel them with a reason. */

/** A cancel form: why it should not be sent. */
export const cancelFormSchema = z.object({ reason: z.string().trim().min(1, 'say why it should not be sent').max(500) });

const idSchema = z.uuid();

/** The row the route's `:id` names; 404 when there is none, or the id is no UUID. */
export async function rowOfParam<Row>(req: Request, findById: (id: string) => Promise<Row | null>): Promise<Row> {
  const id = idSchema.safeParse(req.params.id);
  const row = id.success ? await findById(id.data) : null;
  if (!row) throw AppError.notFound();
  return row;
}

/** Audits the rows a staff member put back in the queue, one event each; `bulk` when they came from a list's selection. */
export async function recordRetries(audit: AuditLog, req: Request, action: AuditAction, retried: string[], bulk: boolean): Promise<void> {
  const actor = signedIn(req).email;
  await audit.record(retried.map((id) => ({ actor, action, target: id, ...(bulk ? { details: { bulk: true } } : {}) })));
}

/**
 * What a retry of `noun`s says: how many went back into the queue, what else became of some
 * (`others`), and how many were no longer failed or cancelled.
 */
export function describeRetry(noun: string, report: { retried: string[]; notRetryable: string[] }, others: string[] = []): { kind: 'ok' | 'error'; text: string } {
  const parts: string[] = [];
  if (report.retried.length > 0) parts.push(`${plural(report.retried.length, noun)} went back into the queue and will be sent now.`);
  parts.push(...others);
  if (report.notRetryable.length > 0) {
    parts.push(`${plural(report.notRetryable.length, noun)} ${report.notRetryable.length === 1 ? 'was' : 'were'} no longer failed or cancelled.`);
  }
  return { kind: report.retried.length > 0 ? 'ok' : 'error', text: parts.join(' ') };
}
