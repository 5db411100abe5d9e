import { z } from 'zod';

/** Rows per page of every list. */
export const PAGE_SIZE = 50;

/** A query parameter that is ignored (rather than refused) when it is not what the page expects. */
export const optionalText = z.string().trim().max(200).optional().catch(undefined);
/** The days a filter may name: PostgreSQL refuses year 0, and the day after 9999-12-31 is past its ISO text. */
const FIRST_DAY = '1970-01-01';
const LAST_DAY = '9998-12-31';

/** `YYYY-MM-DD`, a day that exists (not 2026-02-30), from FIRST_DAY to LAST_DAY. */
function isFilterDay(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || text < FIRST_DAY || text > LAST_DAY) return false;
  return new Date(`${text}T00:00:00Z`).toISOString().slice(0, 10) === text;
}

/** A day to filter by, or nothing when left empty; anything else is refused (400), never ignored. */
export const optionalDate = z
  .string()
  .trim()
  .refine((text) => text === '' || isFilterDay(text), `must be a day from ${FIRST_DAY} to ${LAST_DAY} (YYYY-MM-DD)`)
  .transform((text) => text || undefined)
  .optional();
export const pageNumber = z.coerce.number().int().min(1).max(100_000).catch(1);

/** `from` and `to` (whole days, UTC, both included) as a half-open range of instants. */
export function dayRange(from: string | undefined, to: string | undefined): { start?: Date; end?: Date } {
  const start = from ? new Date(`${from}T00:00:00Z`) : undefined;
  const end = to ? new Date(new Date(`${to}T00:00:00Z`).getTime() + 24 * 3600 * 1000) : undefined;
  return { start, end };
}

/** Which rows page `page` shows. */
export function pageOf(page: number): { offset: number; limit: number } {
  return { offset: (page - 1) * PAGE_SIZE, limit: PAGE_SIZE };
}

export function pageCountOf(total: number): number {
  return Math.max(1, Math.ceil(total / PAGE_SIZE));
}

/** A form field that may come once or several times (checkboxes). */
export const manyValues = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]));
