import type { AuditEvent } from '../../generated/prisma/client';
import { AUDIT_ACTIONS, type AuditAction } from '../../audit/log';
import type { StaffMember } from '../../auth/staff';
import { freeTextFor, plural, time } from '../format';
import { html, urlWith, type Html } from '../../pages/html';
import { layout, pager, selectOptions, type PageContext } from '../../pages/layout';

/** A page of a list, and the filter that made it. */
export interface Listing<Row, Query> {
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

/** The pages of what actions were done to, by the action's prefix. */
const TARGET_PAGES: Array<[prefix: string, path: string]> = [
  ['optout_', '/admin/optouts/'],
  ['template_send_', '/admin/whatsapp/queued/'],
];

/** What the action was done to, linked to its page when it has one. */
function target(event: AuditEvent): Html | string {
  const page = TARGET_PAGES.find(([prefix]) => event.action.startsWith(prefix));
  return page && event.target ? html`<a href="${page[1]}${event.target}">${event.target}</a>` : (event.target ?? '');
}

export function auditPage(ctx: PageContext, view: Listing<AuditEvent, AuditQuery>) {
  const member = ctx.member!;
  const actions: Array<[string, string]> = [['', 'Anything'], ...Object.entries(AUDIT_ACTIONS)];
  const rows = view.rows.map(
    (event) => html`<tr>
  <td data-label="When">${time(event.at)}</td>
  <td data-label="Who">${event.actor}</td>
  <td data-label="What">${AUDIT_ACTIONS[event.action as AuditAction] ?? event.action}</td>
  <td data-label="Of">${target(event)}</td>
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
