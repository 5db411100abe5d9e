import type { OptoutStatus } from '../../optouts/store';
import { dailyChart, type DayCounts } from '../chart';
import { duration, plural } from '../format';
import { html, urlWith } from '../../pages/html';
import { layout, type PageContext } from '../../pages/layout';

export interface OverviewView {
  counts: Record<OptoutStatus, number>;
  days: DayCounts[];
  /** Undefined when Redis did not answer. */
  queue: { waiting: number; delayed: number; active: number } | undefined;
  oldestQueued: { id: string; createdAt: Date } | null;
  now: Date;
}

const STATUS_HELP: Record<OptoutStatus, string> = {
  queued: 'waiting to be sent, or waiting to try again',
  submitted: 'accepted by DHIS2',
  failed: 'not sent: need someone to look at them',
  cancelled: 'staff chose not to send them',
};

export function overviewPage(ctx: PageContext, view: OverviewView) {
  const { counts, queue, oldestQueued } = view;
  const cards = (Object.keys(STATUS_HELP) as OptoutStatus[]).map(
    (status) => html`<li class="card card-${status}">
  <a href="${urlWith('/admin/optouts', { status })}"><span class="figure">${counts[status].toLocaleString('en')}</span>
  <span class="label">${status}</span></a>
  <span class="help">${STATUS_HELP[status]}</span>
</li>`,
  );
  const attention =
    counts.failed > 0
      ? html`<p class="flash flash-error">${plural(counts.failed, 'opt-out')} did not reach DHIS2.
<a href="${urlWith('/admin/optouts', { status: 'failed' })}">Review the failed opt-outs</a>.</p>`
      : html`<p class="flash flash-ok">No failed opt-outs.</p>`;
  const queueText = queue
    ? html`${plural(queue.waiting, 'job')} waiting for the worker, ${plural(queue.delayed, 'job')} waiting to try again, ${plural(queue.active, 'job')} being sent now.`
    : html`<span class="error-text">The queue cannot be read right now: Redis is not answering.</span>`;
  const oldest = oldestQueued
    ? html`The oldest queued opt-out was received <a href="/admin/optouts/${oldestQueued.id}">${duration(view.now.getTime() - oldestQueued.createdAt.getTime())} ago</a>.`
    : html`Nothing is queued.`;
  return layout(
    ctx,
    'Overview',
    html`${attention}
<section aria-labelledby="counts-title"><h2 id="counts-title">Opt-outs by status</h2><ul class="cards">${cards}</ul></section>
<section aria-labelledby="queue-title"><h2 id="queue-title">Queue</h2><p>${queueText}</p><p>${oldest}</p></section>
<section aria-labelledby="days-title"><h2 id="days-title">Last ${view.days.length} days</h2>${dailyChart(view.days)}
<details><summary>The figures as a table</summary>
<table class="compact"><thead><tr><th scope="col">Day (UTC)</th><th scope="col">Received</th><th scope="col">Failed</th></tr></thead>
<tbody>${view.days.map((day) => html`<tr><td>${day.day}</td><td>${day.received}</td><td>${day.failed}</td></tr>`)}</tbody></table>
</details></section>`,
  );
}
