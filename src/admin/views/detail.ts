import type { AuditEvent } from '../../generated/prisma/client';
import { AUDIT_ACTIONS, type AuditAction } from '../../audit/log';
import { hasRole, type StaffMember } from '../../auth/staff';
import { freeTextFor, time } from '../format';
import { html, type Html } from '../../pages/html';
import { csrfField, type PageContext } from '../../pages/layout';

/** The page of one row a worker sends (an opt-out, a queued send): its fields, then what operators may do to it. */

export function fieldList(fields: Array<[label: string, value: Html | string]>): Html {
  return html`<dl class="fields">${fields.map(([label, value]) => html`<dt>${label}</dt><dd>${value}</dd>`)}</dl>`;
}

/**
 * The retry and cancel forms, for operators, each while the row's status allows it: `path` is the
 * row's page, `partner` where a retry sends it, `noun` what the row is called.
 */
export function actionsPanel(ctx: PageContext, row: { path: string; partner: string; noun: string; retryable: boolean; cancellable: boolean }): Html | false {
  const operator = hasRole(ctx.member!, 'operator');
  const retry =
    operator &&
    row.retryable &&
    html`<form method="post" action="${row.path}/retry">${csrfField(ctx)}
<p>Send it to ${row.partner} again now, with a fresh set of tries.</p><button type="submit">Retry now</button></form>`;
  const cancel =
    operator &&
    row.cancellable &&
    html`<form method="post" action="${row.path}/cancel">${csrfField(ctx)}
<label>Why should it not be sent? <textarea name="reason" required maxlength="500" rows="2"></textarea></label>
<button type="submit" class="danger">Cancel this ${row.noun}</button></form>`;
  return (retry || cancel) && html`<section class="actions-panel" aria-label="Actions">${retry}${cancel}</section>`;
}

function historyItem(event: AuditEvent, viewer: StaffMember): Html {
  const reason = freeTextFor((event.details as { reason?: string } | null)?.reason ?? null, viewer);
  return html`<li>${time(event.at)} · ${event.actor} ${AUDIT_ACTIONS[event.action as AuditAction] ?? event.action}${reason && html`: “${reason}”`}</li>`;
}

/** What staff did to the row, from the audit log; nothing when they did nothing. */
export function historySection(history: AuditEvent[], viewer: StaffMember): Html | false {
  return (
    history.length > 0 &&
    html`<section aria-labelledby="history-title"><h2 id="history-title">What staff did</h2><ul class="history">${history.map((event) => historyItem(event, viewer))}</ul></section>`
  );
}
