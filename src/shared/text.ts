import { z } from 'zod';

/**
 * PostgreSQL's text and jsonb refuse NUL characters and unpaired UTF-16 surrogates (which JSON's
 * `\u` escapes can carry): such a value would fail the insert and answer 500. Refusing them at the
 * edge keeps the answer a 400.
 */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && value.isWellFormed();
}

/** Text that is safe to store, for text we did not write ourselves (a partner's answer, say). */
export function toStorableText(value: string): string {
  return value.toWellFormed().replaceAll('\u0000', '\uFFFD');
}

/** A request string of at most `max` characters that PostgreSQL can store as it is. */
export function storableText(max: number) {
  return z.string().max(max).refine(isStorableText, 'must not contain NUL characters or unpaired surrogates');
}
