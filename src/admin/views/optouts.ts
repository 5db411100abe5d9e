import { hasRole, type StaffMember } from '../../auth/staff';
import type { AuditEvent } from '../../generated/prisma/client';
import { CANCELLABLE_STATUSES, OPTOUT_STATUSES, RETRYABLE_STATUSES, type Optout, type OptoutAttempt } from '../../optouts/store';
import { freeTextFor, phoneOf, plural, statusBadge, time, wholeNumberHint } from '../format';
import { html, urlWith, type Html } from '../../pages/html';
import { csrfField, layout, pager, selectOptions, type PageContext } from '../../pages/layout';
import { actionsPanel, fieldList, historySection } from './detail';

/** The list's filter as the form sends it (and as links carry it). */
export interface OptoutQuery {
  status?: string;
  from?: string;
  to?: string;
  q?: string;
}

export interface OptoutListView {
  query: OptoutQuery;
  rows: Optout[];
  total: number;
  page: number;
  pageCount: number;
  /** Failed opt-outs that match the filter: what "retry all failed" would retry. */
  failedMatching: number;
}

const RETRYABLE = new Set<string>(RETRYABLE_STATUSES);

function filterFields(query: OptoutQuery): Html {
  return html`<input type="hidden" name="status" value="${query.status}">
<input type="hidden" name="from" value="${query.from}"><input type="hidden" name="to" value="${query.to}">
<input type="hidden" name="q" value="${query.q}">`;
}

function filterForm(query: OptoutQuery, viewer: StaffMember): Html {
  const statuses: Array<[string, string]> = [['', 'Any'], ...OPTOUT_STATUSES.map((status): [string, string] => [status, status])];
  return html`<form class="filters" method="get" action="/admin/optouts" role="search">
  <label>Status <select name="status">${selectOptions(statuses, query.status)}</select></label>
  <label>Received from <input type="date" name="from" value="${query.from}"></label>
  <label>to <input type="date" name="to" value="${query.to}"></label>
  <label class="wide">Contact UUID, opt-out id or phone number <input type="search" name="q" value="${query.q}" placeholder="e.g. +27 82 000 1001">${wholeNumberHint(viewer)}</label>
  <button type="submit">Show</button> <a href="/admin/optouts">Clear</a>
</form>`;
}

function shortUuid(uuid: string): string {
  return `${uuid.slice(0, 8)}…`;
}

export function optoutListPage(ctx: PageContext, view: OptoutListView) {
  const member = ctx.member!;
  const operator = hasRole(member, 'operator');
  const rows = view.rows.map((optout) => {
    const phone = phoneOf(optout.contactUrn, member);
    const selectable = operator && RETRYABLE.has(optout.status);
    return html`<tr>
  ${operator && html`<td class="select">${selectable && html`<input type="checkbox" name="id" value="${optout.id}" aria-label="Select the opt-out of ${phone ?? optout.contactUuid}">`}</td>`}
  <td data-label="Received">${time(optout.createdAt)}</td>
  <td data-label="Contact"><a href="/admin/optouts/${optout.id}" title="${optout.contactUuid}">${phone ?? shortUuid(optout.contactUuid)}</a></td>
  <td data-label="Reason">${freeTextFor(optout.reasonCategory ?? optout.reasonValue, member) ?? '—'}</td>
  <td data-label="Status">${statusBadge(optout.status)}</td>
  <td data-label="Attempts">${optout.attempts}</td>
  <td data-label="Last error" class="excerpt">${freeTextFor(optout.lastError, member)}</td>
</tr>`;
  });
  const table = html`<table class="list">
<thead><tr>${operator && html`<th scope="col"><span class="visually-hidden">Select</span></th>`}<th scope="col">Received</th><th scope="col">Contact</th><th scope="col">Reason</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Last error</th></tr></thead>
<tbody>${rows}</tbody></table>`;
  const anySelectable = view.rows.some((optout) => RETRYABLE.has(optout.status));
  const actions =
    operator &&
    html`<div class="actions">
  ${anySelectable && html`<button type="submit" name="scope" value="selected">Retry selected</button>`}
  ${view.failedMatching > 0 && html`<button type="submit" name="scope" value="failed">Retry all ${plural(view.failedMatching, 'failed opt-out')}${hasFilter(view.query) ? ' that match' : ''}</button>`}
</div>`;
  const results =
    view.total === 0
      ? html`<p class="empty">No opt-outs match.</p>`
      : operator
        ? html`<form method="post" action="/admin/optouts/retry">${csrfField(ctx)}${filterFields(view.query)}${actions}${table}</form>`
        : table;
  return layout(
    ctx,
    'Opt-outs',
    html`${filterForm(view.query, member)}
<p class="summary">${plural(view.total, 'opt-out')}${hasFilter(view.query) ? ' match' : ''}, newest first.</p>
${results}
${pager(view.page, view.pageCount, (page) => urlWith('/admin/optouts', { ...view.query, page }))}`,
  );
}

function hasFilter(query: OptoutQuery): boolean {
  return Boolean(query.status || query.from || query.to || query.q);
}

/** Says how many opt-outs a retry will send again, before it does. */
export function retryConfirmPage(ctx: PageContext, view: { scope: string; ids: string[]; query: OptoutQuery; count: number; left: number }) {
  const back = urlWith('/admin/optouts', { ...view.query });
  return layout(
    ctx,
    `Retry ${plural(view.count, 'opt-out')}?`,
    html`<section class="message">
<p>${plural(view.count, 'opt-out')} will go back into the queue and be sent to DHIS2 again now, with a fresh set of tries.
Their earlier attempts stay in their history.</p>
${view.left > 0 && html`<p>These are the oldest; ${plural(view.left, 'more failed opt-out')} can be retried in the next go.</p>`}
<form method="post" action="/admin/optouts/retry">${csrfField(ctx)}${filterFields(view.query)}
<input type="hidden" name="scope" value="${view.scope}">${view.ids.map((id) => html`<input type="hidden" name="id" value="${id}">`)}
<input type="hidden" name="confirmed" value="yes">
<button type="submit">Yes, retry ${plural(view.count, 'opt-out')}</button> <a href="${back}">No, go back</a>
</form></section>`,
  );
}

const ANSWER_PREVIEW = 300;

/** The partner's answer: its start in view, all of what was kept a click away. */
function answerExcerpt(response: string): Html {
  if (response.length <= ANSWER_PREVIEW) return html`<pre class="answer">${response}</pre>`;
  return html`<pre class="answer">${response.slice(0, ANSWER_PREVIEW)}…</pre>
<details><summary>The whole answer (${response.length.toLocaleString('en')} characters)</summary><pre>${response}</pre></details>`;
}

function attemptItem(attempt: OptoutAttempt, viewer: StaffMember): Html {
  const error = freeTextFor(attempt.error, viewer);
  // Masked whole, before the excerpt cuts it: a number cut in two would be too short to be masked.
  const response = freeTextFor(attempt.response, viewer);
  return html`<li class="attempt attempt-${attempt.outcome}">
  <p class="when">${time(attempt.startedAt)} · try ${attempt.number} · ${attempt.partner}</p>
  <p><strong>${attempt.outcome}</strong>${attempt.httpStatus !== null && html` · HTTP ${attempt.httpStatus}`} · ${attempt.durationMs} ms</p>
  ${error && html`<p class="error-text">${error}</p>`}
  ${response && answerExcerpt(response)}
</li>`;
}

export function optoutDetailPage(ctx: PageContext, view: { optout: Optout; attempts: OptoutAttempt[]; history: AuditEvent[] }) {
  const { optout } = view;
  const member = ctx.member!;
  const sinceRetry = optout.attempts - optout.priorAttempts;
  const fields: Array<[string, Html | string]> = [
    ['Status', statusBadge(optout.status)],
    ['Contact UUID', html`<code>${optout.contactUuid}</code>`],
    ['Phone number', phoneOf(optout.contactUrn, member) ?? '—'],
    ['Channel', optout.contactUrn?.split(':')[0] ?? '—'],
    ['Reason', freeTextFor([optout.reasonCategory, optout.reasonValue].filter(Boolean).join(' · '), member) || '—'],
    ['Received', time(optout.createdAt)],
    ['Last change', time(optout.updatedAt)],
    ['Submitted', time(optout.submittedAt)],
    ['Attempts', optout.priorAttempts > 0 ? `${optout.attempts} (${sinceRetry} since the last retry)` : String(optout.attempts)],
    ['Last error', freeTextFor(optout.lastError, member) ?? '—'],
    ...(optout.cancelReason ? ([['Why it was cancelled', freeTextFor(optout.cancelReason, member)!]] as Array<[string, string]>) : []),
    ['Opt-out id', html`<code>${optout.id}</code>`],
  ];
  return layout(
    ctx,
    'Opt-out',
    html`<p><a href="/admin/optouts">← All opt-outs</a></p>
${fieldList(fields)}
${actionsPanel(ctx, { path: `/admin/optouts/${optout.id}`, partner: 'DHIS2', noun: 'opt-out', retryable: RETRYABLE.has(optout.status), cancellable: CANCELLABLE_STATUSES.includes(optout.status) })}
<section aria-labelledby="attempts-title"><h2 id="attempts-title">Attempts</h2>
${view.attempts.length === 0 ? html`<p class="empty">No attempts yet.</p>` : html`<ol class="timeline">${view.attempts.map((attempt) => attemptItem(attempt, member))}</ol>`}
</section>
${historySection(view.history, member)}`,
  );
}
