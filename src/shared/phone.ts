/** Marks that numbers copied from a phone's or WhatsApp's screen carry around them, unseen. */
const DIRECTION_MARKS = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A phone number in E.164 with its leading `+`, from a RapidPro URN (`tel:`, `whatsapp:`) or a bare
 * number as people write them: spaces, dashes, dots and brackets, `00` for `+`, and the `(0)` of
 * `+27 (0)82 …`, the trunk prefix that is dialled only within the country.
 */
export function toE164(value: string): string | undefined {
  const path = value.replace(DIRECTION_MARKS, '').replace(/^(tel|whatsapp):/i, '').replace(/[?#].*$/, '');
  const digits = path.replace(/\(0\)/g, '').replace(/[\s\-().]/g, '');
  const candidate = digits.startsWith('+') ? digits : digits.startsWith('00') ? `+${digits.slice(2)}` : `+${digits}`;
  return /^\+[1-9]\d{6,14}$/.test(candidate) ? candidate : undefined;
}

export type UrnScheme = 'tel' | 'whatsapp';

export function urnScheme(urn: string): UrnScheme | undefined {
  const scheme = urn.slice(0, urn.indexOf(':')).toLowerCase();
  return scheme === 'tel' || scheme === 'whatsapp' ? scheme : undefined;
}
