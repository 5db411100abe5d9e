import type { Request } from 'express';
import type { AuditLog } from '../audit/log';
import { signedIn } from '../auth/guard';
import { AppError } from '../errors';
import { maskPhone, toE164, type CountryCode } from '../shared/phone';
import { seesFullNumbers } from './format';

/**
 * Phone-number searches that one staff member who sees numbers masked may make per hour. A whole
 * number that matches confirms the hidden digits of a masked one, so trying the 10^5 numbers a mask
 * leaves open must not be possible; admins, who see numbers in full, are not limited.
 */
export const NUMBER_SEARCHES_PER_HOUR = 20;
const HOUR_MS = 3600 * 1000;

/**
 * Counts and audits a search for a phone number (`term`, as typed on `page`) by staff who see numbers
 * masked, with the number masked in the audit log; over NUMBER_SEARCHES_PER_HOUR it refuses with 429.
 * A term that is not a whole number (read in DEFAULT_COUNTRY when it has no country code) finds
 * nothing for them, so it is not counted.
 */
export function numberSearchLimit(audit: AuditLog, defaultCountry: CountryCode) {
  return async (req: Request, page: string, term: string | undefined): Promise<void> => {
    const member = signedIn(req);
    const number = term ? toE164(term, defaultCountry) : undefined;
    if (!number || seesFullNumbers(member)) return;
    const entry = { actor: member.email, action: 'number_search' as const, target: maskPhone(number), details: { page } };
    if (await audit.recordWithinLimit(entry, { limit: NUMBER_SEARCHES_PER_HOUR, windowMs: HOUR_MS })) return;
    req.log.warn({ page }, 'phone-number search refused: over the hourly limit');
    throw new AppError(
      429,
      `You have made ${NUMBER_SEARCHES_PER_HOUR} phone-number searches in the last hour, as many as staff who see numbers masked may make: try again later.`,
    );
  };
}

export type NumberSearchLimit = ReturnType<typeof numberSearchLimit>;
