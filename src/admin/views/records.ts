import type { AuditEvent } from '../../generated/prisma/client';
import { AUDIT_ACTIONS, type AuditAction } from '../../audit/log';
import type { WhatsappSend } from '../../whatsapp/store';
import type { StaffMember } from '../../auth/staff';
import { freeTextFor, messageIdFor, phoneOf, plural, time, wholeNumberHint } from '../format';
import { html, urlWith } from '../../pages/html';
import { layout, pager, selectOptions, type PageContext } from '../../pages/layout';

interface Listing<Row, Query> {
  query: Query;
  rows: Row[];
  total: number;
  page: number;
  pageCount: number;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
}

function details(event: AuditEvent, viewer: StaffMember): string | undefined {
  const value = event.details as Record<string, unknown> | null;
  if (!value) return '';
  const text = Object.entries(value)
    .map(([key, item]) => `${key}: ${typeof item === 'string' ? item : JSON.stringify(item)}`)
    .join(' · ');
  return freeTextFor(text, viewer);
}

export function auditPage(ctx: PageContext, view: Listing<AuditEvent, AuditQuery>) {
  const member = ctx.member!;
  const actions: Array<[string, string]> = [['', 'Anything'], ...Object.entries(AUDIT_ACTIONS)];
  const rows = view.rows.map(
    (event) => html`<tr>
  <td data-label="When">${time(event.at)}</td>
  <td data-label="Who">${event.actor}</td>
  <td data-label="What">${AUDIT_ACTIONS[event.action as AuditAction] ?? event.action}</td>
  <td data-label="Of">${event.action.startsWith('optout_') && event.target ? html`<a href="/admin/optouts/${event.target}">${event.target}</a>` : (event.target ?? '')}</td>
  <td data-label="Details" class="excerpt">${details(event, member)}</td>
</tr>`,
  );
  return layout(
    ctx,
    'Audit log',
    html`<form class="filters" method="get" action="/admin/audit" role="search">
  <label>Who <input type="search" name="actor" value="${view.query.actor}" placeholder="email, or cli"></label>
  <label>What <select name="action">${selectOptions(actions, view.query.action)}</select></label>
  <button type="submit">Show</button> <a href="/admin/audit">Clear</a>
</form>
<p class="summary">${plural(view.total, 'event')}, newest first.</p>
${
  view.total === 0
    ? html`<p class="empty">Nothing recorded.</p>`
    : html`<table class="list"><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Of</th><th scope="col">Details</th></tr></thead><tbody>${rows}</tbody></table>`
}
${pager(view.page, view.pageCount, (page) => urlWith('/admin/audit', { ...view.query, page }))}`,
  );
}

export interface WhatsappQuery {
  outcome?: string;
  template?: string;
  recipient?: string;
  from?: string;
  to?: string;
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
    html`<form class="filters" method="get" action="/admin/whatsapp" role="search">
  <label>Outcome <select name="outcome">${selectOptions(outcomes, query.outcome)}</select></label>
  <label>Template <input type="search" name="template" value="${query.template}"></label>
  <label>Phone number <input type="search" name="recipient" value="${query.recipient}">${wholeNumberHint(member)}</label>
  <label>Sent from <input type="date" name="from" value="${query.from}"></label>
  <label>to <input type="date" name="to" value="${query.to}"></label>
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
