import { html, type Html } from '../pages/html';

export interface DayCounts {
  /** YYYY-MM-DD */
  day: string;
  received: number;
  failed: number;
}

/** The `count` days up to and including `today` (UTC), oldest first, zero where nothing happened. */
export function lastDays(count: number, today: Date, received: Map<string, number>, failed: Map<string, number>): DayCounts[] {
  return Array.from({ length: count }, (_, index) => {
    const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - (count - 1 - index)));
    const key = day.toISOString().slice(0, 10);
    return { day: key, received: received.get(key) ?? 0, failed: failed.get(key) ?? 0 };
  });
}

/** A round axis maximum at or above `max`: 1, 2, 5, 10, 20, 50 … */
export function axisMax(max: number): number {
  if (max <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((step) => step * magnitude).find((candidate) => candidate >= max)!;
}

const WIDTH = 720;
const HEIGHT = 240;
const PLOT = { left: 40, right: 8, top: 12, bottom: 28 };

/**
 * Received and failed opt-outs per day as an SVG bar chart, drawn on the server: no script, colours
 * from the stylesheet's classes, each day's figures in a <title> (a tooltip, and read by screen readers).
 */
export function dailyChart(days: DayCounts[]): Html {
  const top = axisMax(Math.max(0, ...days.map((day) => Math.max(day.received, day.failed))));
  const plotWidth = WIDTH - PLOT.left - PLOT.right;
  const plotHeight = HEIGHT - PLOT.top - PLOT.bottom;
  const slot = plotWidth / Math.max(1, days.length);
  const barWidth = Math.max(1, slot / 2 - 1);
  const y = (value: number) => PLOT.top + plotHeight - (value / top) * plotHeight;
  const round = (value: number) => Math.round(value * 10) / 10;

  const ticks = (Number.isInteger(top / 2) ? [0, top / 2, top] : [0, top]).map(
    (value) => html`<g class="tick"><line x1="${PLOT.left}" x2="${WIDTH - PLOT.right}" y1="${round(y(value))}" y2="${round(y(value))}"></line>
<text x="${PLOT.left - 6}" y="${round(y(value) + 4)}" text-anchor="end">${value}</text></g>`,
  );
  const bars = days.map((day, index) => {
    const x = PLOT.left + index * slot;
    const bar = (kind: 'received' | 'failed', value: number, offset: number) =>
      value > 0
        ? html`<rect class="bar-${kind}" x="${round(x + offset)}" y="${round(y(value))}" width="${round(barWidth)}" height="${round(y(0) - y(value))}"></rect>`
        : '';
    // Every fifth day is labelled, counting back from the last, so that today always is.
    const label =
      (days.length - 1 - index) % 5 === 0
        ? html`<text class="day" x="${round(x + slot / 2)}" y="${HEIGHT - 8}" text-anchor="middle">${day.day.slice(5)}</text>`
        : '';
    return html`<g><title>${day.day}: ${day.received} received, ${day.failed} failed</title>
<rect class="slot" x="${round(x)}" y="${PLOT.top}" width="${round(slot)}" height="${plotHeight}"></rect>${bar('received', day.received, 1)}${bar('failed', day.failed, slot / 2)}${label}</g>`;
  });
  const total = (key: 'received' | 'failed') => days.reduce((sum, day) => sum + day[key], 0);
  return html`<figure class="chart">
<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="chart-title">
<title id="chart-title">Opt-outs per day over the last ${days.length} days: ${total('received')} received, ${total('failed')} failed</title>
${ticks}${bars}
</svg>
<figcaption><span class="key key-received"></span> received <span class="key key-failed"></span> failed (by the day they failed; still failed now) · days in UTC</figcaption>
</figure>`;
}
