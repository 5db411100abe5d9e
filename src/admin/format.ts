import { maskPhone, maskPhonesIn, toE164 } from '../shared/phone';
import { hasRole, type StaffMember } from '../auth/staff';
import { html, type Html } from '../pages/html';

/** `2026-11-27 10:15 UTC`, in a <time> element carrying the exact instant. */
export function time(date: Date | null | undefined): Html {
  if (!date) return html`<span class="muted">—</span>`;
  const text = `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return html`<time datetime="${date.toISOString()}">${text}</time>`;
}

/** `45 s`, `12 min`, `3 h 5 min`, `4 days`. */
export function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  return `${Math.floor(hours / 24)} days`;
}

/** Only admins see phone numbers in full; everyone else sees them masked. */
export function seesFullNumbers(viewer: Pick<StaffMember, 'role'>): boolean {
  return hasRole(viewer, 'admin');
}

/**
 * The contact's number from its URN (or a send's recipient, in E.164): in full for admins, masked for
 * everyone else. Read with its country code, as RapidPro writes URNs: one it could not give a country
 * code is shown as no number, rather than guessed at.
 */
export function phoneOf(urn: string | null, viewer: Pick<StaffMember, 'role'>): string | undefined {
  const number = urn ? toE164(urn, undefined) : undefined;
  if (!number) return undefined;
  return seesFullNumbers(viewer) ? number : maskPhone(number);
}

/** Under a search box that takes phone numbers, for those who see them masked (the search matches only whole numbers). */
export function wholeNumberHint(viewer: Pick<StaffMember, 'role'>): Html | false {
  return !seesFullNumbers(viewer) && html`<span class="hint">Type phone numbers in full, with the country code.</span>`;
}

/** A partner's error or answer, which may quote the contact's number: as it is for admins, every number in it masked for everyone else. */
export function freeTextFor(text: string | null, viewer: Pick<StaffMember, 'role'>): string | undefined {
  if (text === null) return undefined;
  return seesFullNumbers(viewer) ? text : maskPhonesIn(text);
}

/** A WhatsApp message id, which holds the recipient's number (Cloud API ids are its base64): for admins only. */
export function messageIdFor(id: string | null, viewer: Pick<StaffMember, 'role'>): Html | string | undefined {
  if (id === null) return undefined;
  return seesFullNumbers(viewer) ? id : html`<span class="muted">hidden</span>`;
}

export function statusBadge(status: string): Html {
  return html`<span class="status status-${status}">${status}</span>`;
}

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count.toLocaleString('en')} ${count === 1 ? one : many}`;
}
