import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

export type { CountryCode };

/** An ISO 3166 alpha-2 code that libphonenumber knows numbering rules for (`ZA`). */
export function isCountryCode(value: string): value is CountryCode {
  return isSupportedCountry(value);
}

/** Marks that numbers copied from a phone's or WhatsApp's screen carry around them, unseen. */
const DIRECTION_MARKS = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** A number read: E.164 with its leading `+`, or why it is not one (never quoting the number, which may reach logs). */
export type PhoneReading = { ok: true; e164: string } | { ok: false; reason: string };

/** Valid by the full metadata (`max`): the smaller sets accept numbers of the right length in ranges no carrier uses. */
function validE164(text: string, country?: CountryCode): string | undefined {
  const number = parsePhoneNumberFromString(text, country);
  return number?.isValid() ? number.number : undefined;
}

/**
 * Reads a phone number from a RapidPro URN or as people write it: spaces, dashes, dots and brackets,
 * `00` for `+`, and the `(0)` of `+27 (0)82 …` (the trunk prefix dialled only within the country).
 * A `whatsapp:` URN holds the number with its country code and no `+`. Anything else without `+` or
 * `00` (a bare number, or a `tel:` URN RapidPro could not normalise) is read in `defaultCountry` when
 * valid there (`082 000 1002`, `820001002`), else as digits after `+` when that is valid (`27820001001`,
 * `447911123456`); without `defaultCountry`, only that second reading is tried.
 */
export function readPhone(value: string, defaultCountry: CountryCode | undefined): PhoneReading {
  const clean = value.replace(DIRECTION_MARKS, '').trim();
  const international = /^whatsapp:/i.test(clean);
  const path = clean.replace(/^(tel|whatsapp):/i, '').replace(/[?#].*$/, '');
  const written = path.replace(/\(0\)/g, '').replace(/[\s\-().]/g, '');
  if (!/^\+?\d+$/.test(written)) return { ok: false, reason: 'is not a phone number' };
  const digits = written.replace(/^(\+|00)/, '');
  const withCountryCode = written.startsWith('+') || written.startsWith('00') || international || !defaultCountry;
  const e164 = withCountryCode ? validE164(`+${digits}`) : (validE164(digits, defaultCountry) ?? validE164(`+${digits}`));
  if (e164) return { ok: true, e164 };
  return {
    ok: false,
    reason: withCountryCode ? 'is not a valid phone number in any region' : `is not a valid phone number in ${defaultCountry} nor with a country code`,
  };
}

/** The number in E.164 with its leading `+` (see readPhone), or undefined. */
export function toE164(value: string, defaultCountry: CountryCode | undefined): string | undefined {
  const reading = readPhone(value, defaultCountry);
  return reading.ok ? reading.e164 : undefined;
}

export type UrnScheme = 'tel' | 'whatsapp';

export function urnScheme(urn: string): UrnScheme | undefined {
  const scheme = urn.slice(0, urn.indexOf(':')).toLowerCase();
  return scheme === 'tel' || scheme === 'whatsapp' ? scheme : undefined;
}

/** `+27820001001` → `+2782*****01`: enough for staff to tell numbers apart, not enough to call. */
export function maskPhone(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const digits = value.replace(/[^\d+]/g, '');
  if (digits.length <= 6) return '*'.repeat(digits.length);
  return digits.slice(0, 5) + '*'.repeat(digits.length - 7) + digits.slice(-2);
}

/** Left as they are: UUIDs (opt-out and contact ids, which may end in 12 digits). */
const UUID_IN_TEXT = String.raw`(?<![\w-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![\w-])`;
/** Left as they are: 14-digit timestamps (YYYYMMDDhhmmss, years 1900 to 2099), which no country's numbers are. */
const TIMESTAMP_IN_TEXT = String.raw`(?<!\d)(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:[01]\d|2[0-3])[0-5]\d[0-5]\d(?!\d)`;
/** WhatsApp Cloud API message ids: base64 that holds the recipient's number. */
const MESSAGE_ID_IN_TEXT = String.raw`wamid\.[\w+/=-]+`;
/**
 * 9 to 15 digits: after a `+` (or `%2B`, as in a URL) with single spaces, dots, dashes, `%20` or a
 * `(0)` between them; without one, in a row, whatever letters or marks stand around them (`x_27…`).
 */
const NUMBER_IN_TEXT = String.raw`(?<!\d)(?:(?:\+|%2B)\d(?:(?:[ .-]|%20| ?\(0\) ?)?\d){8,14}|\d{9,15})(?!\d)`;
const IN_TEXT = new RegExp(`(?<keep>${UUID_IN_TEXT}|${TIMESTAMP_IN_TEXT})|(?<messageId>${MESSAGE_ID_IN_TEXT})|${NUMBER_IN_TEXT}`, 'gi');

/**
 * Free text (a partner's error or answer, a reason someone typed, a log line) with every phone number
 * in it masked as by maskPhone, however it is written, and every WhatsApp message id hidden. UUIDs
 * and 14-digit timestamps stay as they are.
 */
export function maskPhonesIn(text: string): string {
  return text.replace(IN_TEXT, (found: string, ...rest: unknown[]) => {
    const groups = rest.at(-1) as { keep?: string; messageId?: string };
    if (groups.keep) return found;
    if (groups.messageId) return 'wamid.…';
    return maskPhone(found.replace(/^%2B/i, '+').replace(/%20|\(0\)/g, '')) ?? '';
  });
}
