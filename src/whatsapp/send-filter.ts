import { toE164, type CountryCode } from '../shared/phone';

/** What the staff pages filter template sends by, synchronous (whatsapp_sends) or queued (template_sends) alike. */
export interface SendFilter {
  /** Part of the template's name. */
  template?: string;
  /** The recipient's number: any of its digits in a row, or with wholeNumbersOnly the whole number. */
  recipient?: string;
  /** `recipient` finds only the whole number, with its country code: for staff who see numbers masked (see OptoutFilter). */
  wholeNumbersOnly?: boolean;
  /** DEFAULT_COUNTRY: how a whole number written without its country code is read. */
  defaultCountry: CountryCode;
  createdFrom?: Date;
  createdBefore?: Date;
}

/** The filter's conditions on what both tables of sends have: the template, the recipient (E.164) and when the send was made. */
export interface SendConditions {
  template?: { contains: string; mode: 'insensitive' };
  recipient?: { in: string[] } | { contains: string };
  createdAt?: { gte?: Date; lt?: Date };
}

export function sendConditions(filter: SendFilter): SendConditions {
  const where: SendConditions = {};
  if (filter.template) where.template = { contains: filter.template, mode: 'insensitive' };
  if (filter.recipient && filter.wholeNumbersOnly) {
    // Recorded as toE164 writes it; anything short of a whole number finds nothing.
    const number = toE164(filter.recipient, filter.defaultCountry);
    where.recipient = { in: number ? [number] : [] };
  } else if (filter.recipient) {
    where.recipient = { contains: filter.recipient.replace(/\D/g, '') };
  }
  if (filter.createdFrom || filter.createdBefore) where.createdAt = { gte: filter.createdFrom, lt: filter.createdBefore };
  return where;
}
