/** A phone number in E.164 with its leading `+`, from a RapidPro URN (`tel:`, `whatsapp:`) or a bare number. */
export function toE164(value: string): string | undefined {
  const path = value.replace(/^(tel|whatsapp):/i, '').replace(/[?#].*$/, '');
  const digits = path.replace(/[\s\-().]/g, '');
  const candidate = digits.startsWith('+') ? digits : `+${digits}`;
  return /^\+[1-9]\d{6,14}$/.test(candidate) ? candidate : undefined;
}

export type UrnScheme = 'tel' | 'whatsapp';

export function urnScheme(urn: string): UrnScheme | undefined {
  const scheme = urn.slice(0, urn.indexOf(':')).toLowerCase();
  return scheme === 'tel' || scheme === 'whatsapp' ? scheme : undefined;
}
