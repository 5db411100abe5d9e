import { createHash } from 'node:crypto';
import { readPhone, toE164, urnScheme, type CountryCode } from '../shared/phone';

/**
 * Pure builders of what DHIS2 receives for an opt-out, through OpenHIM or the tracker API.
 * The exact JSON each partner gets is visible here, and table-tested in test/optouts/submission.test.ts.
 */

/** What the builders need to know of an opt-out row. */
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
  channel: 'whatsapp' | 'sms';
  /** Who registered the nurse (E.164); the nurse herself when unknown. */
  registeredBy: string;
  facilityCode: string | undefined;
  optOutDate: Date;
  reason: OptoutReason;
  fields: Record<string, unknown>;
}

/** Data the submission needs is missing: retrying cannot help, staff must fix the contact. */
export class MissingContactData extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingContactData';
  }
}

/** A value cannot be written in its data element's value type: as permanent as missing data. */
export class UnwritableValue extends MissingContactData {
  constructor(message: string) {
    super(message);
    this.name = 'UnwritableValue';
  }
}

function phoneUrns(urns: string[]): string[] {
  return urns.filter((urn) => urnScheme(urn) !== undefined);
}

/** The webhook is enough when it carried contact fields and a phone URN; otherwise RapidPro is asked. */
export function needsContactLookup(optout: OptoutFacts): boolean {
  return !optout.contactFields || phoneUrns(optout.contactUrn ? [optout.contactUrn] : []).length === 0;
}

function text(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  const result = String(value).trim();
  return result === '' ? undefined : result;
}

/** An ISO 8601 date and time without an offset (a text field someone typed, say). */
const LOCAL_DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$/;

function parseDate(value: unknown): Date | undefined {
  const raw = text(value);
  if (!raw) return undefined;
  // Without an offset JavaScript would read the time in the host's zone: taken as UTC instead, the
  // same on every host (RapidPro's own datetime fields always carry their offset).
  const local = LOCAL_DATE_TIME.exec(raw);
  const date = new Date(local ? `${local[1]}T${local[2]}Z` : raw);
  return Number.isNaN(date.getTime()) ? undefined : date;
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
    registeredBy: registeredByOf(text(fields.registered_by), msisdn, defaultCountry),
    facilityCode: text(fields.facility_code),
    optOutDate: parseDate(fields.opt_out_date) ?? optout.createdAt,
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

/** `20261126101500`: the opt-out time in UTC, as NurseConnect's OpenHIM channel expects. */
export function encounterDate(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

export interface OpenhimOptout {
  mha: 1;
  swt: number;
  type: 8;
  sid: string;
  eid: string;
  cmsisdn: string;
  dmsisdn: string;
  faccode: string;
  id: string;
  optoutreason: number;
  encdate: string;
}

/** The `swt` (the channel's code) Jembi is sent for each channel: OPENHIM_SWT_WHATSAPP and OPENHIM_SWT_SMS. */
export type SwtCodes = Readonly<Record<ContactDetails['channel'], number>>;

/** NurseConnect's opt-out message for OpenHIM/Jembi. `eid` is the opt-out id, the same on every retry. */
export function buildOpenhimOptout(optoutId: string, details: ContactDetails, swt: SwtCodes): OpenhimOptout {
  if (!details.facilityCode) throw new MissingContactData('contact has no facility_code field');
  return {
    mha: 1,
    swt: swt[details.channel],
    type: 8,
    sid: details.contactUuid,
    eid: optoutId,
    cmsisdn: details.msisdn,
    dmsisdn: details.registeredBy,
    faccode: details.facilityCode,
    id: `${details.msisdn.slice(1)}^^^ZAF^TEL`,
    optoutreason: details.reason.code,
    encdate: encounterDate(details.optOutDate),
  };
}

const UID_FIRST = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const UID_REST = `${UID_FIRST}0123456789`;

/** A DHIS2 UID (`^[a-zA-Z][a-zA-Z0-9]{10}$`) derived from the opt-out id, so a retry updates the same event. */
export function eventUidFor(optoutId: string): string {
  const bytes = createHash('sha256').update(`companion-optout:${optoutId}`).digest();
  let uid = UID_FIRST[bytes[0]! % UID_FIRST.length]!;
  for (let index = 1; index < 11; index += 1) uid += UID_REST[bytes[index]! % UID_REST.length]!;
  return uid;
}

export interface TrackerSettings {
  program: string;
  programStage: string;
  orgUnit: string | undefined;
  /** Field name → data element UID. */
  dataElements: Readonly<Record<string, string>>;
}

/**
 * Values a data element can be mapped to: every contact field, plus these derived ones (which win).
 * A Map, so that a configured field named `toString`, say, finds no value rather than an inherited one.
 * The opt-out date stays a Date until its data element's value type says how to write it.
 */
function trackerValues(details: ContactDetails): Map<string, string | Date | undefined> {
  return new Map<string, string | Date | undefined>([
    ...Object.entries(details.fields).map(([name, value]): [string, string | undefined] => [name, text(value)]),
    ['contact_uuid', details.contactUuid],
    ['msisdn', details.msisdn],
    ['registered_by', details.registeredBy],
    ['facility_code', details.facilityCode],
    ['opt_out_date', details.optOutDate],
    ['optout_reason', details.reason.name],
    ['optout_reason_code', String(details.reason.code)],
    ['channel', details.channel],
  ]);
}

/** A date written as text starts with `yyyy-MM-dd`; anything else (`1`, `tomorrow`) is not taken for one. */
const ISO_DATE_START = /^\d{4}-\d{2}-\d{2}/;
const TIME_OF_DAY = /^([01]?\d|2[0-3]):[0-5]\d$/;
const NUMBER = /^-?\d+(\.\d+)?$/;
/** dhis2-core's ValidationUtils: the words it takes for true and false. */
const TRUE_WORDS = new Set(['true', 't', '1']);
const FALSE_WORDS = new Set(['false', 'f', '0']);

function asDate(value: string | Date): Date | undefined {
  if (value instanceof Date) return value;
  return ISO_DATE_START.test(value) ? parseDate(value) : undefined;
}

function asNumber(value: string | Date, accepts: (number: number) => boolean): string | undefined {
  if (value instanceof Date || !NUMBER.test(value)) return undefined;
  return accepts(Number(value)) ? value : undefined;
}

/**
 * The value in the form DHIS2 takes for a data element of this value type (dhis2-core's ValueType; the
 * tracker importer checks them with ValidationUtils.valueIsValid and refuses others with E1302), or
 * undefined when it cannot be written in it. Dates are written as their UTC day, as encdate is. Types
 * that no contact value could be (files, coordinates, org units) go as they are, for DHIS2 to judge.
 */
export function valueOfType(value: string | Date, valueType: string): string | undefined {
  switch (valueType) {
    case 'DATE':
    case 'AGE':
      return asDate(value)?.toISOString().slice(0, 10);
    case 'DATETIME':
      return asDate(value)?.toISOString();
    case 'TIME':
      if (value instanceof Date) return value.toISOString().slice(11, 16);
      return TIME_OF_DAY.test(value) ? value : undefined;
    case 'NUMBER':
      return asNumber(value, () => true);
    case 'INTEGER':
      return asNumber(value, Number.isInteger);
    case 'INTEGER_POSITIVE':
      return asNumber(value, (number) => Number.isInteger(number) && number > 0);
    case 'INTEGER_NEGATIVE':
      return asNumber(value, (number) => Number.isInteger(number) && number < 0);
    case 'INTEGER_ZERO_OR_POSITIVE':
      return asNumber(value, (number) => Number.isInteger(number) && number >= 0);
    case 'PERCENTAGE':
      return asNumber(value, (number) => number >= 0 && number <= 100);
    case 'UNIT_INTERVAL':
      return asNumber(value, (number) => number >= 0 && number <= 1);
    case 'BOOLEAN':
    case 'TRUE_ONLY': {
      const word = value instanceof Date ? '' : value.toLowerCase();
      if (TRUE_WORDS.has(word)) return 'true';
      return valueType === 'BOOLEAN' && FALSE_WORDS.has(word) ? 'false' : undefined;
    }
    default:
      return value instanceof Date ? value.toISOString() : value;
  }
}

/** Data element UID → its value type (`DATE`, `TEXT`…), as DHIS2's metadata API gives them. */
export type DataElementTypes = ReadonlyMap<string, string>;

/** One tracker event for `POST /api/tracker`, with a UID derived from the opt-out id, each value in its data element's form. */
export function buildTrackerPayload(optoutId: string, details: ContactDetails, settings: TrackerSettings, valueTypes: DataElementTypes) {
  const orgUnit = details.facilityCode ?? settings.orgUnit;
  if (!orgUnit) throw new MissingContactData('contact has no facility_code field and DHIS2_ORG_UNIT is not set');
  const values = trackerValues(details);
  const dataValues: Array<{ dataElement: string; value: string }> = [];
  for (const [field, dataElement] of Object.entries(settings.dataElements)) {
    const value = values.get(field);
    if (value === undefined) continue;
    const valueType = valueTypes.get(dataElement);
    if (!valueType) throw new UnwritableValue(`data element ${dataElement} (${field}) is not in DHIS2's metadata`);
    const written = valueOfType(value, valueType);
    // The value itself stays out of the message: it may be a phone number.
    if (written === undefined) throw new UnwritableValue(`the ${field} value cannot be written as ${valueType} for data element ${dataElement}`);
    dataValues.push({ dataElement, value: written });
  }
  return {
    events: [
      {
        event: eventUidFor(optoutId),
        program: settings.program,
        programStage: settings.programStage,
        orgUnit,
        occurredAt: details.optOutDate.toISOString(),
        status: 'COMPLETED',
        dataValues,
      },
    ],
  };
}
