import { createHash } from 'node:crypto';
import { toE164, urnScheme } from '../shared/phone';

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
  /** registered_by held something that is not a phone number in E.164 (so the nurse's own was sent). */
  registeredByUnusable: boolean;
  facilityCode: string | undefined;
  optOutDate: Date;
  reasonCategory: string | undefined;
  fields: Record<string, unknown>;
}

/** Data the submission needs is missing: retrying cannot help, staff must fix the contact. */
export class MissingContactData extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingContactData';
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

export function resolveContactDetails(optout: OptoutFacts, contact?: ContactRecord): ContactDetails {
  const fields = { ...(contact?.fields ?? {}), ...(optout.contactFields ?? {}) };
  const urns = phoneUrns([...(optout.contactUrn ? [optout.contactUrn] : []), ...(contact?.urns ?? [])]);
  // The first tel: URN with a valid number, else the first such whatsapp: one: a bad number is skipped, not fatal.
  const byPreference = [...urns.filter((urn) => urnScheme(urn) === 'tel'), ...urns.filter((urn) => urnScheme(urn) === 'whatsapp')];
  const msisdn = byPreference.map(toE164).find((number) => number !== undefined);
  if (!msisdn) throw new MissingContactData('contact has no tel: or whatsapp: URN with a valid phone number');
  const channelUrn = optout.contactUrn ?? urns[0];
  const registeredByRaw = text(fields.registered_by);
  const registeredBy = registeredByRaw ? toE164(registeredByRaw) : undefined;
  return {
    contactUuid: optout.contactUuid,
    msisdn,
    channel: channelUrn && urnScheme(channelUrn) === 'whatsapp' ? 'whatsapp' : 'sms',
    registeredBy: registeredBy ?? msisdn,
    registeredByUnusable: Boolean(registeredByRaw) && !registeredBy,
    facilityCode: text(fields.facility_code),
    optOutDate: parseDate(fields.opt_out_date) ?? optout.createdAt,
    reasonCategory: optout.reasonCategory ?? undefined,
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
const UNKNOWN_REASON_CODE = OPTOUT_REASON_CODES.get('unknown')!;

export function optoutReasonCode(category: string | undefined): number {
  return OPTOUT_REASON_CODES.get(category?.toLowerCase() ?? 'unknown') ?? UNKNOWN_REASON_CODE;
}

/** `20261126101500`: the opt-out time in UTC, as NurseConnect's OpenHIM channel expects. */
export function encounterDate(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

export interface OpenhimOptout {
  mha: 1;
  swt: 1 | 7;
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

/** NurseConnect's opt-out message for OpenHIM/Jembi. `eid` is the opt-out id, the same on every retry. */
export function buildOpenhimOptout(optoutId: string, details: ContactDetails): OpenhimOptout {
  if (!details.facilityCode) throw new MissingContactData('contact has no facility_code field');
  return {
    mha: 1,
    swt: details.channel === 'whatsapp' ? 7 : 1,
    type: 8,
    sid: details.contactUuid,
    eid: optoutId,
    cmsisdn: details.msisdn,
    dmsisdn: details.registeredBy,
    faccode: details.facilityCode,
    id: `${details.msisdn.slice(1)}^^^ZAF^TEL`,
    optoutreason: optoutReasonCode(details.reasonCategory),
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
 */
function trackerValues(details: ContactDetails): Map<string, string | undefined> {
  return new Map([
    ...Object.entries(details.fields).map(([name, value]): [string, string | undefined] => [name, text(value)]),
    ['contact_uuid', details.contactUuid],
    ['msisdn', details.msisdn],
    ['registered_by', details.registeredBy],
    ['facility_code', details.facilityCode],
    ['opt_out_date', details.optOutDate.toISOString()],
    ['optout_reason', details.reasonCategory ?? 'unknown'],
    ['optout_reason_code', String(optoutReasonCode(details.reasonCategory))],
    ['channel', details.channel],
  ]);
}

/** One tracker event for `POST /api/tracker`, with a UID derived from the opt-out id. */
export function buildTrackerPayload(optoutId: string, details: ContactDetails, settings: TrackerSettings) {
  const orgUnit = details.facilityCode ?? settings.orgUnit;
  if (!orgUnit) throw new MissingContactData('contact has no facility_code field and DHIS2_ORG_UNIT is not set');
  const values = trackerValues(details);
  const dataValues = Object.entries(settings.dataElements)
    .map(([field, dataElement]) => ({ dataElement, value: values.get(field) }))
    .filter((dataValue): dataValue is { dataElement: string; value: string } => dataValue.value !== undefined);
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
