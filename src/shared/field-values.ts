/** Reading RapidPro contact field values, which come as any JSON: as trimmed text, and as dates. */

/** The value as trimmed text; undefined for null, undefined and blank. */
export function fieldText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  const result = String(value).trim();
  return result === '' ? undefined : result;
}

/** An ISO 8601 date and time without an offset (a text field someone typed, say). */
const LOCAL_DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$/;

export function fieldDate(value: unknown): Date | undefined {
  const raw = fieldText(value);
  if (!raw) return undefined;
  // Without an offset JavaScript would read the time in the host's zone: taken as UTC instead, the
  // same on every host (RapidPro's own datetime fields always carry their offset).
  const local = LOCAL_DATE_TIME.exec(raw);
  const date = new Date(local ? `${local[1]}T${local[2]}Z` : raw);
  return Number.isNaN(date.getTime()) || !startsWithRealDay(raw) ? undefined : date;
}

/** JavaScript rolls `2026-02-30` over to 2 March: a written day must exist in the calendar as written. */
function startsWithRealDay(raw: string): boolean {
  const day = /^(\d{4})-(\d{2})-(\d{2})/.exec(raw);
  if (!day) return true;
  const [year, month, date] = [Number(day[1]), Number(day[2]), Number(day[3])];
  const written = new Date(Date.UTC(year, month - 1, date));
  return written.getUTCMonth() === month - 1 && written.getUTCDate() === date;
}
