import { MissingContactData, type OptoutPayloadFacts } from '../partners/nurseconnect-payloads';
import { fieldDate, fieldText } from '../shared/field-values';
import { readPhone, toE164, urnScheme, type CountryCode } from '../shared/phone';

/**
 * What an opt-out is to be submitted with: its contact (from the webhook or RapidPro), numbers in
 * E.164, its reason's code, its date. Pure; partners/nurseconnect-payloads.ts builds the JSON from it.
 */

/** What resolving the contact needs to know of an opt-out row. */
export interface OptoutFacts {
  id: string;
  contactUuid: string;
  contactUrn: string | null;
  contactFields: Record<string, unknown> | null;
  reasonCategory: string | null;
  reasonValue: string | null;
  createdAt: Date;
}

/** The contact as RapidPro knows it (API v2 contacts.json). */
export interface ContactRecord {
  urns: string[];
  fields: Record<string, unknown>;
}

export interface ContactDetails {
  contactUuid: string;
  /** The nurse's number, E.164: the contact's first tel: URN with a valid number, else such a whatsapp: URN. */
  msisdn: string;
  /** The channel the opt-out came over. */
  channel: OptoutPayloadFacts['channel'];
  /** Who registered the nurse (E.164); the nurse herself when unknown. */
  registeredBy: string;
  facilityCode: string | undefined;
  optOutDate: Date;
  reason: OptoutReason;
  fields: Record<string, unknown>;
}

function phoneUrns(urns: string[]): string[] {
  return urns.filter((urn) => urnScheme(urn) !== undefined);
}

/** The webhook is enough when it carried contact fields and a phone URN; otherwise RapidPro is asked. */
export function needsContactLookup(optout: OptoutFacts): boolean {
  return !optout.contactFields || phoneUrns(optout.contactUrn ? [optout.contactUrn] : []).length === 0;
}

/** registered_by in E.164; absent, the nurse's own number. One that is there but is no valid number is refused. */
function registeredByOf(value: string | undefined, msisdn: string, defaultCountry: CountryCode): string {
  if (!value) return msisdn;
  const reading = readPhone(value, defaultCountry);
  if (!reading.ok) throw new MissingContactData(`contact field registered_by ${reading.reason}`);
  return reading.e164;
}

/** Numbers written without their country code are read in `defaultCountry` (DEFAULT_COUNTRY). */
export function resolveContactDetails(optout: OptoutFacts, contact: ContactRecord | undefined, defaultCountry: CountryCode): ContactDetails {
  const fields = { ...(contact?.fields ?? {}), ...(optout.contactFields ?? {}) };
  const urns = phoneUrns([...(optout.contactUrn ? [optout.contactUrn] : []), ...(contact?.urns ?? [])]);
  // The first tel: URN with a valid number, else the first such whatsapp: one: a bad number is skipped, not fatal.
  const byPreference = [...urns.filter((urn) => urnScheme(urn) === 'tel'), ...urns.filter((urn) => urnScheme(urn) === 'whatsapp')];
  const msisdn = byPreference.map((urn) => toE164(urn, defaultCountry)).find((number) => number !== undefined);
  if (!msisdn) throw new MissingContactData('contact has no tel: or whatsapp: URN with a valid phone number');
  const channelUrn = optout.contactUrn ?? urns[0];
  return {
    contactUuid: optout.contactUuid,
    msisdn,
    channel: channelUrn && urnScheme(channelUrn) === 'whatsapp' ? 'whatsapp' : 'sms',
    registeredBy: registeredByOf(fieldText(fields.registered_by), msisdn, defaultCountry),
    facilityCode: fieldText(fields.facility_code),
    optOutDate: fieldDate(fields.opt_out_date) ?? optout.createdAt,
    reason: optoutReason(optout.reasonCategory, optout.reasonValue),
    fields,
  };
}

/** A Map, not an object literal: a category such as `constructor` must not find what objects inherit. */
const OPTOUT_REASON_CODES = new Map<string, number>([
  ['not_useful', 4],
  ['other', 5],
  ['unknown', 6],
  ['job_change', 7],
  ['number_owner_change', 8],
]);
const UNKNOWN_REASON = 'unknown';

export interface OptoutReason {
  /** NurseConnect's code for the reason: 6 (unknown) for anything it has no code for. */
  code: number;
  /** The reason's name as the codes know it (`job_change`); `unknown` for anything else. */
  name: string;
  /** What the flow sent when it maps to no code although it is not "unknown" (for the log); else undefined. */
  unmapped: string | undefined;
}

/** A reason as flow authors write it: "Job Change", "job-change" and `job_change` are one. */
function reasonName(given: string | null | undefined): string | undefined {
  const name = given?.trim().toLowerCase().replace(/[\s-]+/g, '_');
  return name ? name : undefined;
}

/** The reason's code from the result's category, else from its value; anything else is unknown (6). */
export function optoutReason(category: string | null | undefined, value?: string | null): OptoutReason {
  const names = [reasonName(category), reasonName(value)];
  const name = names.find((candidate) => candidate !== undefined && OPTOUT_REASON_CODES.has(candidate)) ?? UNKNOWN_REASON;
  const given = category?.trim() || value?.trim() || undefined;
  return {
    code: OPTOUT_REASON_CODES.get(name)!,
    name,
    unmapped: name === UNKNOWN_REASON && !names.includes(UNKNOWN_REASON) ? given : undefined,
  };
}

/** What the payload builders are given for this opt-out. */
export function payloadFacts(optoutId: string, details: ContactDetails): OptoutPayloadFacts {
  return {
    optoutId,
    contactUuid: details.contactUuid,
    msisdn: details.msisdn,
    registeredBy: details.registeredBy,
    facilityCode: details.facilityCode,
    channel: details.channel,
    reasonCode: details.reason.code,
    reasonName: details.reason.name,
    optOutDate: details.optOutDate,
    fields: details.fields,
  };
}
