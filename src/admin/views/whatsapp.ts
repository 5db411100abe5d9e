import type { AuditEvent } from '../../generated/prisma/client';
import { hasRole, type StaffMember } from '../../auth/staff';
import type { WhatsappSend } from '../../whatsapp/store';
import {
  CANCELLABLE_SEND_STATUSES,
  RETRYABLE_SEND_STATUSES,
  TEMPLATE_SEND_STATUSES,
  type TemplateSend,
} from '../../whatsapp/template-send-store';
import { freeTextFor, messageIdFor, phoneOf, plural, statusBadge, time, wholeNumberHint } from '../format';
import { html, urlWith, type Html } from '../../pages/html';
import { csrfField, layout, pager, selectOptions, type PageContext } from '../../pages/layout';
import { actionsPanel, fieldList, historySection } from './detail';
import type { Listing } from './records';

/** The filters both lists of sends have, as the forms send them (and links carry them). */
export interface SendQuery {
  template?: string;
  recipient?: string;
  from?: string;
  to?: string;
}

export interface WhatsappQuery extends SendQuery {
  outcome?: string;
}

export interface TemplateSendQuery extends SendQuery {
  status?: string;
}

export const QUEUED_SENDS_PATH = '/admin/whatsapp/queued';

const RETRYABLE = new Set<string>(RETRYABLE_SEND_STATUSES);

/** The template, phone number and day fields of a list of sends' filter form; `days` names what the days are of. */
function sendFilterFields(query: SendQuery, viewer: StaffMember, days: string): Html {
  return html`<label>Template <input type="search" name="template" value="${query.template}"></label>
  <label>Phone number <input type="search" name="recipient" value="${query.recipient}">${wholeNumberHint(viewer)}</label>
  <label>${days} from <input type="date" name="from" value="${query.from}"></label>
  <label>to <input type="date" name="to" value="${query.to}"></label>`;
}

export function whatsappPage(ctx: PageContext, view: Listing<WhatsappSend, WhatsappQuery>) {
  const member = ctx.member!;
  const { query } = view;
  const rows = view.rows.map(
    (send) => html`<tr>
  <td data-label="Sent">${time(send.createdAt)}</td>
  <td data-label="To">${phoneOf(send.recipient, member)}</td>
  <td data-label="Template">${send.template} <span class="muted">${send.language}</span></td>
  <td data-label="Answer"><span class="status ${send.status < 300 ? 'status-submitted' : 'status-failed'}">${send.status}</span></td>
  <td data-label="Message id" class="excerpt">${messageIdFor(send.messageId, member)}</td>
  <td data-label="Error" class="excerpt">${freeTextFor(send.error, member)}</td>
  <td data-label="Took">${send.durationMs} ms</td>
</tr>`,
  );
  const outcomes: Array<[string, string]> = [['', 'Any'], ['sent', 'Sent'], ['failed', 'Failed']];
  return layout(
    ctx,
    'WhatsApp sends',
    html`<p>The sends RapidPro waited for. Those it asked to be sent later are under <a href="${QUEUED_SENDS_PATH}">Queued WhatsApp sends</a>.</p>
<form class="filters" method="get" action="/admin/whatsapp" role="search">
  <label>Outcome <select name="outcome">${selectOptions(outcomes, query.outcome)}</select></label>
  ${sendFilterFields(query, member, 'Sent')}
  <button type="submit">Show</button> <a href="/admin/whatsapp">Clear</a>
</form>
<p class="summary">${plural(view.total, 'send')}, newest first.</p>
${
  view.total === 0
    ? html`<p class="empty">No sends match.</p>`
    : html`<table class="list"><thead><tr><th scope="col">Sent</th><th scope="col">To</th><th scope="col">Template</th><th scope="col">Answer</th><th scope="col">Message id</th><th scope="col">Error</th><th scope="col">Took</th></tr></thead><tbody>${rows}</tbody></table>`
}
${pager(view.page, view.pageCount, (page) => urlWith('/admin/whatsapp', { ...query, page }))}`,
  );
}

/** The list's filter as hidden fields, so that a form on it leads back to the same list. */
function queryFields(query: TemplateSendQuery): Html[] {
  return Object.entries(query)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`);
}

export function templateSendListPage(ctx: PageContext, view: Listing<TemplateSend, TemplateSendQuery>) {
  const member = ctx.member!;
  const { query } = view;
  const operator = hasRole(member, 'operator');
  const rows = view.rows.map((send) => {
    const phone = phoneOf(send.recipient, member);
    return html`<tr>
  ${operator && html`<td class="select">${RETRYABLE.has(send.status) && html`<input type="checkbox" name="id" value="${send.id}" aria-label="Select the send to ${phone}">`}</td>`}
  <td data-label="Received">${time(send.createdAt)}</td>
  <td data-label="To"><a href="${QUEUED_SENDS_PATH}/${send.id}">${phone ?? 'the send'}</a></td>
  <td data-label="Template">${send.template} <span class="muted">${send.language}</span></td>
  <td data-label="Status">${statusBadge(send.status)}</td>
  <td data-label="Attempts">${send.attempts}</td>
  <td data-label="Message id" class="excerpt">${messageIdFor(send.messageId, member)}</td>
  <td data-label="Last error" class="excerpt">${freeTextFor(send.lastError, member)}</td>
  <td data-label="Sent">${time(send.sentAt)}</td>
</tr>`;
  });
  const table = html`<table class="list">
<thead><tr>${operator && html`<th scope="col"><span class="visually-hidden">Select</span></th>`}<th scope="col">Received</th><th scope="col">To</th><th scope="col">Template</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Message id</th><th scope="col">Last error</th><th scope="col">Sent</th></tr></thead>
<tbody>${rows}</tbody></table>`;
  const retryable = operator && view.rows.some((send) => RETRYABLE.has(send.status));
  const statuses: Array<[string, string]> = [['', 'Any'], ...TEMPLATE_SEND_STATUSES.map((status): [string, string] => [status, status])];
  return layout(
    ctx,
    'Queued WhatsApp sends',
    html`<p>The template messages RapidPro asked to be sent later, which a worker sends. Those RapidPro waited for are under <a href="/admin/whatsapp">WhatsApp sends</a>.</p>
<form class="filters" method="get" action="${QUEUED_SENDS_PATH}" role="search">
  <label>Status <select name="status">${selectOptions(statuses, query.status)}</select></label>
  ${sendFilterFields(query, member, 'Received')}
  <button type="submit">Show</button> <a href="${QUEUED_SENDS_PATH}">Clear</a>
</form>
<p class="summary">${plural(view.total, 'send')}, newest first.</p>
${
  view.total === 0
    ? html`<p class="empty">No sends match.</p>`
    : retryable
      ? html`<form method="post" action="${QUEUED_SENDS_PATH}/retry">${csrfField(ctx)}${queryFields(query)}
<div class="actions"><button type="submit">Retry selected</button></div>${table}</form>`
      : table
}
${pager(view.page, view.pageCount, (page) => urlWith(QUEUED_SENDS_PATH, { ...query, page }))}`,
  );
}

/** Says how many sends a retry will send again, before it does. */
export function sendRetryConfirmPage(ctx: PageContext, view: { ids: string[]; query: TemplateSendQuery }) {
  const count = plural(view.ids.length, 'send');
  return layout(
    ctx,
    `Retry ${count}?`,
    html`<section class="message">
<p>${count} will go back into the queue and be sent to WhatsApp again now, with a fresh set of tries.
Their earlier tries stay counted.</p>
<form method="post" action="${QUEUED_SENDS_PATH}/retry">${csrfField(ctx)}${queryFields(view.query)}
${view.ids.map((id) => html`<input type="hidden" name="id" value="${id}">`)}
<input type="hidden" name="confirmed" value="yes">
<button type="submit">Yes, retry ${count}</button> <a href="${urlWith(QUEUED_SENDS_PATH, { ...view.query })}">No, go back</a>
</form></section>`,
  );
}

export function templateSendDetailPage(ctx: PageContext, view: { send: TemplateSend; history: AuditEvent[] }) {
  const { send } = view;
  const member = ctx.member!;
  const sinceRetry = send.attempts - send.priorAttempts;
  const fields: Array<[string, Html | string]> = [
    ['Status', statusBadge(send.status)],
    ['To', phoneOf(send.recipient, member) ?? '—'],
    ['Template', send.template],
    ['Language', send.language],
    ['Contact UUID', send.contactUuid ? html`<code>${send.contactUuid}</code>` : '—'],
    ['Received', time(send.createdAt)],
    ['Last change', time(send.updatedAt)],
    ['Sent', time(send.sentAt)],
    ...(send.nextAttemptAt && send.status === 'queued' ? ([['Next try', time(send.nextAttemptAt)]] as Array<[string, Html]>) : []),
    ['Attempts', send.priorAttempts > 0 ? `${send.attempts} (${sinceRetry} since the last retry)` : String(send.attempts)],
    ['Last answer', send.upstreamStatus === null ? '—' : `HTTP ${send.upstreamStatus}`],
    ['Message id', messageIdFor(send.messageId, member) ?? '—'],
    ['Last error', freeTextFor(send.lastError, member) ?? '—'],
    ...(send.cancelReason ? ([['Why it was cancelled', freeTextFor(send.cancelReason, member)!]] as Array<[string, string]>) : []),
    ['WhatsApp API', send.api],
    ['Send id', html`<code>${send.id}</code>`],
  ];
  return layout(
    ctx,
    'Queued WhatsApp send',
    html`<p><a href="${QUEUED_SENDS_PATH}">← All queued sends</a></p>
${fieldList(fields)}
${actionsPanel(ctx, { path: `${QUEUED_SENDS_PATH}/${send.id}`, partner: 'WhatsApp', noun: 'send', retryable: RETRYABLE.has(send.status), cancellable: CANCELLABLE_SEND_STATUSES.includes(send.status) })}
${historySection(view.history, member)}`,
  );
}
