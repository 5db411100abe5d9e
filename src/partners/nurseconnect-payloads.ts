import { createHash } from 'node:crypto';
import { fieldDate, fieldText } from '../shared/field-values';

/**
 * The exact JSON DHIS2 receives for a NurseConnect opt-out: through OpenHIM/Jembi, or as an event for
 * the tracker API. Pure functions; test/partners/nurseconnect-payloads.test.ts shows every shape.
 */

/** What the builders need to know of an opt-out whose contact is resolved. */
export interface OptoutPayloadFacts {
  /** The opt-out's id: OpenHIM's eid, and the seed of the tracker event's UID. */
  optoutId: string;
  contactUuid: string;
  /** The nurse's number, E.164. */
  msisdn: string;
  /** Who registered the nurse, E.164. */
  registeredBy: string;
  facilityCode: string | undefined;
  /** The channel the opt-out came over. */
  channel: 'whatsapp' | 'sms';
  /** NurseConnect's code for the reason (6, unknown, for anything it has no code for). */
  reasonCode: number;
  /** The reason's name as the codes know it (`job_change`). */
  reasonName: string;
  optOutDate: Date;
  /** The contact's fields, any of which a tracker data element may be mapped to. */
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
export type SwtCodes = Readonly<Record<OptoutPayloadFacts['channel'], number>>;

/** NurseConnect's opt-out message for OpenHIM/Jembi. `eid` is the opt-out id, the same on every retry. */
export function buildOpenhimOptout(optout: OptoutPayloadFacts, swt: SwtCodes): OpenhimOptout {
  if (!optout.facilityCode) throw new MissingContactData('contact has no facility_code field');
  return {
    mha: 1,
    swt: swt[optout.channel],
    type: 8,
    sid: optout.contactUuid,
    eid: optout.optoutId,
    cmsisdn: optout.msisdn,
    dmsisdn: optout.registeredBy,
    faccode: optout.facilityCode,
    id: `${optout.msisdn.slice(1)}^^^ZAF^TEL`,
    optoutreason: optout.reasonCode,
    encdate: encounterDate(optout.optOutDate),
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
function trackerValues(optout: OptoutPayloadFacts): Map<string, string | Date | undefined> {
  return new Map<string, string | Date | undefined>([
    ...Object.entries(optout.fields).map(([name, value]): [string, string | undefined] => [name, fieldText(value)]),
    ['contact_uuid', optout.contactUuid],
    ['msisdn', optout.msisdn],
    ['registered_by', optout.registeredBy],
    ['facility_code', optout.facilityCode],
    ['opt_out_date', optout.optOutDate],
    ['optout_reason', optout.reasonName],
    ['optout_reason_code', String(optout.reasonCode)],
    ['channel', optout.channel],
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
  return ISO_DATE_START.test(value) ? fieldDate(value) : undefined;
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
export function buildTrackerPayload(optout: OptoutPayloadFacts, settings: TrackerSettings, valueTypes: DataElementTypes) {
  const orgUnit = optout.facilityCode ?? settings.orgUnit;
  if (!orgUnit) throw new MissingContactData('contact has no facility_code field and DHIS2_ORG_UNIT is not set');
  const values = trackerValues(optout);
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
        event: eventUidFor(optout.optoutId),
        program: settings.program,
        programStage: settings.programStage,
        orgUnit,
        occurredAt: optout.optOutDate.toISOString(),
        status: 'COMPLETED',
        dataValues,
      },
    ],
  };
}
