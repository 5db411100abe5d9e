import { execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  buildOpenhimOptout,
  buildTrackerPayload,
  encounterDate,
  eventUidFor,
  MissingContactData,
  needsContactLookup,
  optoutReason,
  resolveContactDetails,
  UnwritableValue,
  valueOfType,
  type OptoutFacts,
} from '../../src/optouts/submission';
import { MAIN } from '../helpers/process';

const OPTOUT_ID = '3f1c2b7e-9a0d-4e55-8c1a-2b3c4d5e6f70';
const CONTACT_UUID = '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f';

function facts(overrides: Partial<OptoutFacts> = {}): OptoutFacts {
  return {
    id: OPTOUT_ID,
    contactUuid: CONTACT_UUID,
    contactUrn: 'whatsapp:27820001001',
    contactFields: null,
    reasonCategory: 'job_change',
    reasonValue: 'job change',
    createdAt: new Date('2026-11-26T10:15:00Z'),
    ...overrides,
  };
}

/** NurseConnect's default swt codes (OPENHIM_SWT_WHATSAPP, OPENHIM_SWT_SMS). */
const SWT = { whatsapp: 7, sms: 1 };

const rapidproContact = {
  urns: ['tel:+27820001001', 'whatsapp:27820001001'],
  fields: { facility_code: '123456', registered_by: '+27820001002' },
};

describe('OpenHIM NurseConnect opt-out', () => {
  it('is exactly this for a contact who opted out over WhatsApp', () => {
    const details = resolveContactDetails(facts(), rapidproContact, 'ZA');
    expect(buildOpenhimOptout(OPTOUT_ID, details, SWT)).toEqual({
      mha: 1,
      swt: 7,
      type: 8,
      sid: CONTACT_UUID,
      eid: OPTOUT_ID,
      cmsisdn: '+27820001001',
      dmsisdn: '+27820001002',
      faccode: '123456',
      id: '27820001001^^^ZAF^TEL',
      optoutreason: 7,
      encdate: '20261126101500',
    });
  });

  it('is exactly this for a contact who opted out over SMS (tel: URN)', () => {
    const details = resolveContactDetails(
      facts({ contactUrn: 'tel:+27820001003', reasonCategory: 'not_useful' }),
      { urns: ['tel:+27820001003'], fields: { facility_code: '654321', opt_out_date: '2026-11-20T08:00:05+02:00' } },
      'ZA',
    );
    expect(buildOpenhimOptout(OPTOUT_ID, details, SWT)).toEqual({
      mha: 1,
      swt: 1,
      type: 8,
      sid: CONTACT_UUID,
      eid: OPTOUT_ID,
      cmsisdn: '+27820001003',
      dmsisdn: '+27820001003',
      faccode: '654321',
      id: '27820001003^^^ZAF^TEL',
      optoutreason: 4,
      encdate: '20261120060005',
    });
  });

  it('prefers the tel: URN for the number even when the opt-out came over WhatsApp', () => {
    const details = resolveContactDetails(facts({ contactUrn: 'whatsapp:27820009999' }), rapidproContact, 'ZA');
    expect(details.msisdn).toBe('+27820001001');
    expect(details.channel).toBe('whatsapp');
  });

  it.each([
    ['tel: listed first', ['tel:12345', 'whatsapp:27820001001']],
    ['whatsapp: listed first', ['whatsapp:27820001001', 'tel:12345']],
  ])('takes the whatsapp: number when the tel: one is valid nowhere (%s)', (_order, urns) => {
    const details = resolveContactDetails(facts({ contactUrn: null }), { urns, fields: {} }, 'ZA');
    expect(details.msisdn).toBe('+27820001001');
  });

  it('takes a later valid tel: number over a first one that is valid nowhere', () => {
    const details = resolveContactDetails(facts({ contactUrn: 'tel:+999123' }), { urns: ['tel:+27820001003', 'whatsapp:27820001001'], fields: {} }, 'ZA');
    expect(details.msisdn).toBe('+27820001003');
  });

  it('reads a tel: URN without its country code in DEFAULT_COUNTRY', () => {
    const details = resolveContactDetails(facts({ contactUrn: 'tel:082 000 1003' }), { urns: [], fields: {} }, 'ZA');
    expect(details.msisdn).toBe('+27820001003');
  });

  // NurseConnect's convention: the device is the nurse's own unless another is known.
  it.each([undefined, '', '  '])("sends the nurse's own number as dmsisdn for a registered_by of %p", (registeredBy) => {
    const details = resolveContactDetails(facts(), { urns: ['tel:+27820001001'], fields: { facility_code: '123456', registered_by: registeredBy } }, 'ZA');
    expect(buildOpenhimOptout(OPTOUT_ID, details, SWT).dmsisdn).toBe('+27820001001');
  });

  it.each([
    ['082 000 1002', '+27820001002'],
    ['0027 82 000 1002', '+27820001002'],
    ['+27 (0)82 000 1002', '+27820001002'],
    ['820001002', '+27820001002'],
    ['27820001002', '+27820001002'],
    ['whatsapp:27820001002', '+27820001002'],
  ])('reads registered_by %p with DEFAULT_COUNTRY as %p', (registeredBy, dmsisdn) => {
    const details = resolveContactDetails(facts(), { urns: ['tel:+27820001001'], fields: { facility_code: '123456', registered_by: registeredBy } }, 'ZA');
    expect(buildOpenhimOptout(OPTOUT_ID, details, SWT).dmsisdn).toBe(dmsisdn);
  });

  it.each(['+999 123', 'not a number'])('refuses a registered_by of %p for good, naming the field and why but not the number', (registeredBy) => {
    const contact = { urns: ['tel:+27820001001'], fields: { facility_code: '123456', registered_by: registeredBy } };
    expect(() => resolveContactDetails(facts(), contact, 'ZA')).toThrow(MissingContactData);
    expect(() => resolveContactDetails(facts(), contact, 'ZA')).toThrow(/^contact field registered_by is not a (valid )?phone number/);
    expect(() => resolveContactDetails(facts(), contact, 'ZA')).not.toThrow(/999/);
  });

  it.each([
    ['with its offset', '2026-11-20T08:00:05+02:00', '20261120060005'],
    ['without an offset, as UTC', '2026-11-20T08:00:05', '20261120080005'],
    ['typed with a space and no seconds', '2026-11-20 08:00', '20261120080000'],
    ['as a date alone', '2026-11-20', '20261120000000'],
  ])('reads opt_out_date %s, whatever the zone of the host', (_case, optOutDate, encdate) => {
    // The built module, in a process of its own on a host two hours ahead of UTC: a time read in the
    // host's zone would show there (Jest's process.env cannot change the zone of its own process).
    const script = `const s = require(${JSON.stringify(path.join(path.dirname(MAIN), 'optouts', 'submission.js'))});
      const details = s.resolveContactDetails(${JSON.stringify(facts())}, { urns: ['tel:+27820001001'], fields: { facility_code: '1', opt_out_date: ${JSON.stringify(optOutDate)} } }, 'ZA');
      process.stdout.write(s.buildOpenhimOptout('x', details, ${JSON.stringify(SWT)}).encdate);`;
    expect(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: 'Africa/Johannesburg' } }).toString()).toBe(encdate);
  });

  it('takes contact details from the webhook fields when they are there', () => {
    const webhookFacts = facts({ contactFields: { facility_code: '777777', registered_by: '27820001005' } });
    expect(needsContactLookup(webhookFacts)).toBe(false);
    const message = buildOpenhimOptout(OPTOUT_ID, resolveContactDetails(webhookFacts, undefined, 'ZA'), SWT);
    expect(message).toMatchObject({ cmsisdn: '+27820001001', dmsisdn: '+27820001005', faccode: '777777', swt: 7 });
  });

  it('asks RapidPro when the webhook has no fields or no phone URN', () => {
    expect(needsContactLookup(facts())).toBe(true);
    expect(needsContactLookup(facts({ contactFields: { facility_code: '1' }, contactUrn: null }))).toBe(true);
  });

  it('refuses a contact without a phone URN or without a facility code', () => {
    expect(() => resolveContactDetails(facts({ contactUrn: null }), { urns: ['mailto:a@b.c'], fields: {} }, 'ZA')).toThrow(MissingContactData);
    expect(() => resolveContactDetails(facts({ contactUrn: 'tel:12345' }), { urns: ['whatsapp:123'], fields: {} }, 'ZA')).toThrow(MissingContactData);
    const noFacility = resolveContactDetails(facts(), { urns: ['tel:+27820001001'], fields: {} }, 'ZA');
    expect(() => buildOpenhimOptout(OPTOUT_ID, noFacility, SWT)).toThrow(/facility_code/);
  });

  it.each([
    ['not_useful', 4],
    ['other', 5],
    ['unknown', 6],
    ['job_change', 7],
    ['number_owner_change', 8],
    // As flow authors name their categories: case, spaces and hyphens do not matter.
    ['Job Change', 7],
    ['not useful', 4],
    ['Number owner change', 8],
    ['job-change', 7],
    ['  Other ', 5],
    ['Unknown', 6],
  ])('maps category %p to %i, and logs nothing', (category, code) => {
    expect(optoutReason(category, null)).toEqual({ code, name: expect.any(String), unmapped: undefined });
  });

  it.each([
    ['a category it has no code for', 'Moved away', 'moved', 'Moved away'],
    ['a value alone that it has no code for', null, 'I have moved', 'I have moved'],
    ['a name objects inherit', 'constructor', null, 'constructor'],
  ])('maps %s to 6 and says so, for the log', (_case, category, value, unmapped) => {
    expect(optoutReason(category, value)).toEqual({ code: 6, name: 'unknown', unmapped });
  });

  it("takes the result's value when its category maps to no code", () => {
    expect(optoutReason('Other reason', 'Job change')).toEqual({ code: 7, name: 'job_change', unmapped: undefined });
    expect(optoutReason('Moved away', 'unknown')).toEqual({ code: 6, name: 'unknown', unmapped: undefined });
  });

  it('counts a missing reason as unknown, with nothing to log', () => {
    expect(optoutReason(null, null)).toEqual({ code: 6, name: 'unknown', unmapped: undefined });
    expect(optoutReason(' ', undefined)).toEqual({ code: 6, name: 'unknown', unmapped: undefined });
  });

  it('sends "Job Change" as reason 7', () => {
    const details = resolveContactDetails(facts({ reasonCategory: 'Job Change', reasonValue: 'new job' }), rapidproContact, 'ZA');
    expect(buildOpenhimOptout(OPTOUT_ID, details, SWT).optoutreason).toBe(7);
  });

  it('sends the swt given for each channel (OPENHIM_SWT_WHATSAPP, OPENHIM_SWT_SMS)', () => {
    const swt = { whatsapp: 1, sms: 3 };
    const overWhatsapp = resolveContactDetails(facts(), rapidproContact, 'ZA');
    const overSms = resolveContactDetails(facts({ contactUrn: 'tel:+27820001001' }), rapidproContact, 'ZA');
    expect(buildOpenhimOptout(OPTOUT_ID, overWhatsapp, swt).swt).toBe(1);
    expect(buildOpenhimOptout(OPTOUT_ID, overSms, swt).swt).toBe(3);
  });

  it('formats the encounter date in UTC', () => {
    expect(encounterDate(new Date('2026-01-02T03:04:05.678Z'))).toBe('20260102030405');
  });
});

describe('DHIS2 tracker event', () => {
  const settings = {
    program: 'IpHINAT79UW',
    programStage: 'A03MvHHogjR',
    orgUnit: 'DiszpKrYNg8',
    dataElements: { msisdn: 'a3kGcGDCuk6', optout_reason_code: 'bx6fsa0t90x', facility_code: 'cYGaxwK615G', not_sent: 'dYGaxwK615G' },
  };
  const valueTypes = new Map([
    ['a3kGcGDCuk6', 'PHONE_NUMBER'],
    ['bx6fsa0t90x', 'INTEGER_POSITIVE'],
    ['cYGaxwK615G', 'TEXT'],
    ['dYGaxwK615G', 'TEXT'],
  ]);

  it('derives a valid, stable event UID from the opt-out id', () => {
    const uid = eventUidFor(OPTOUT_ID);
    expect(uid).toMatch(/^[a-zA-Z][a-zA-Z0-9]{10}$/);
    expect(eventUidFor(OPTOUT_ID)).toBe(uid);
    expect(eventUidFor('00000000-0000-4000-8000-000000000000')).not.toBe(uid);
  });

  it('is exactly this, with the deterministic UID and the configured data elements', () => {
    const details = resolveContactDetails(facts(), rapidproContact, 'ZA');
    expect(buildTrackerPayload(OPTOUT_ID, details, settings, valueTypes)).toEqual({
      events: [
        {
          event: eventUidFor(OPTOUT_ID),
          program: 'IpHINAT79UW',
          programStage: 'A03MvHHogjR',
          orgUnit: '123456',
          occurredAt: '2026-11-26T10:15:00.000Z',
          status: 'COMPLETED',
          dataValues: [
            { dataElement: 'a3kGcGDCuk6', value: '+27820001001' },
            { dataElement: 'bx6fsa0t90x', value: '7' },
            { dataElement: 'cYGaxwK615G', value: '123456' },
          ],
        },
      ],
    });
  });

  it('falls back to DHIS2_ORG_UNIT without a facility code, and fails without either', () => {
    const details = resolveContactDetails(facts(), { urns: ['tel:+27820001001'], fields: {} }, 'ZA');
    expect(buildTrackerPayload(OPTOUT_ID, details, settings, valueTypes).events[0]!.orgUnit).toBe('DiszpKrYNg8');
    expect(() => buildTrackerPayload(OPTOUT_ID, details, { ...settings, orgUnit: undefined }, valueTypes)).toThrow(MissingContactData);
  });

  it('writes the opt-out date as its data element takes it: yyyy-MM-dd for DATE, ISO 8601 for DATETIME', () => {
    const dated = resolveContactDetails(facts({ contactFields: { opt_out_date: '2026-11-20T00:30:05+02:00', visit: '2026-11-19' } }), undefined, 'ZA');
    const dates = { ...settings, dataElements: { opt_out_date: 'eYGaxwK615G', visit: 'fYGaxwK615G' } };
    const write = (types: string[]) =>
      buildTrackerPayload(OPTOUT_ID, dated, dates, new Map([['eYGaxwK615G', types[0]!], ['fYGaxwK615G', types[1]!]])).events[0]!.dataValues;
    expect(write(['DATE', 'DATETIME'])).toEqual([
      { dataElement: 'eYGaxwK615G', value: '2026-11-19' },
      { dataElement: 'fYGaxwK615G', value: '2026-11-19T00:00:00.000Z' },
    ]);
    expect(write(['DATETIME', 'DATE'])).toEqual([
      { dataElement: 'eYGaxwK615G', value: '2026-11-19T22:30:05.000Z' },
      { dataElement: 'fYGaxwK615G', value: '2026-11-19' },
    ]);
    expect(write(['TEXT', 'TEXT'])[0]).toEqual({ dataElement: 'eYGaxwK615G', value: '2026-11-19T22:30:05.000Z' });
  });

  it('writes the reason by the name its code has, whatever the category was called', () => {
    const details = resolveContactDetails(facts({ reasonCategory: 'Number owner change' }), rapidproContact, 'ZA');
    const reasons = { ...settings, dataElements: { optout_reason: 'eYGaxwK615G', optout_reason_code: 'bx6fsa0t90x' } };
    const types = new Map([['eYGaxwK615G', 'TEXT'], ['bx6fsa0t90x', 'INTEGER_POSITIVE']]);
    expect(buildTrackerPayload(OPTOUT_ID, details, reasons, types).events[0]!.dataValues).toEqual([
      { dataElement: 'eYGaxwK615G', value: 'number_owner_change' },
      { dataElement: 'bx6fsa0t90x', value: '8' },
    ]);
  });

  it('refuses a value its data element cannot take, or an element DHIS2 does not list, naming the element but not the value', () => {
    const details = resolveContactDetails(facts({ contactFields: { visit: 'last Tuesday' } }), rapidproContact, 'ZA');
    const visits = { ...settings, dataElements: { visit: 'fYGaxwK615G' } };
    const build = (types: Map<string, string>) => () => buildTrackerPayload(OPTOUT_ID, details, visits, types);
    expect(build(new Map([['fYGaxwK615G', 'DATE']]))).toThrow(UnwritableValue);
    expect(build(new Map([['fYGaxwK615G', 'DATE']]))).toThrow('the visit value cannot be written as DATE for data element fYGaxwK615G');
    expect(build(new Map())).toThrow("data element fYGaxwK615G (visit) is not in DHIS2's metadata");
  });

  it.each<[string, string | Date, string | undefined]>([
    ['DATE', new Date('2026-11-26T23:59:59.999Z'), '2026-11-26'],
    ['DATE', '2026-11-26', '2026-11-26'],
    ['DATE', '26/11/2026', undefined],
    ['DATE', '1', undefined],
    ['AGE', '1990-04-01', '1990-04-01'],
    ['DATETIME', new Date('2026-11-26T10:15:00Z'), '2026-11-26T10:15:00.000Z'],
    ['DATETIME', '2026-11-26T12:15:00+02:00', '2026-11-26T10:15:00.000Z'],
    ['DATETIME', 'soon', undefined],
    ['TIME', '09:30', '09:30'],
    ['TIME', new Date('2026-11-26T10:15:00Z'), '10:15'],
    ['TIME', '9.30am', undefined],
    ['NUMBER', '-1.5', '-1.5'],
    ['NUMBER', 'five', undefined],
    ['INTEGER', '-3', '-3'],
    ['INTEGER', '3.5', undefined],
    ['INTEGER_POSITIVE', '7', '7'],
    ['INTEGER_POSITIVE', '0', undefined],
    ['INTEGER_NEGATIVE', '-7', '-7'],
    ['INTEGER_NEGATIVE', '7', undefined],
    ['INTEGER_ZERO_OR_POSITIVE', '0', '0'],
    ['INTEGER_ZERO_OR_POSITIVE', '-1', undefined],
    ['PERCENTAGE', '100', '100'],
    ['PERCENTAGE', '101', undefined],
    ['UNIT_INTERVAL', '0.5', '0.5'],
    ['UNIT_INTERVAL', '2', undefined],
    ['BOOLEAN', 'True', 'true'],
    ['BOOLEAN', '0', 'false'],
    ['BOOLEAN', 'yes', undefined],
    ['TRUE_ONLY', 'TRUE', 'true'],
    ['TRUE_ONLY', 'false', undefined],
    ['TEXT', 'job_change', 'job_change'],
    ['TEXT', new Date('2026-11-26T10:15:00Z'), '2026-11-26T10:15:00.000Z'],
    ['LONG_TEXT', 'anything at all', 'anything at all'],
    ['PHONE_NUMBER', '+27820001001', '+27820001001'],
    ['NUMBER', new Date('2026-11-26T10:15:00Z'), undefined],
  ])('writes a %s value %p as %p', (valueType, value, written) => {
    expect(valueOfType(value, valueType)).toBe(written);
  });
});

describe.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('the name %s, which every object inherits', (name) => {
  const details = resolveContactDetails(facts({ reasonCategory: name, reasonValue: null }), rapidproContact, 'ZA');

  it('is an unknown reason (6) for OpenHIM', () => {
    expect(buildOpenhimOptout(OPTOUT_ID, details, SWT).optoutreason).toBe(6);
  });

  it('is an unknown reason (6) for the tracker, and a field the contact does not have', () => {
    const settings = {
      program: 'IpHINAT79UW',
      programStage: 'A03MvHHogjR',
      orgUnit: undefined,
      // A computed key: an own property even for __proto__, as JSON.parse makes it.
      dataElements: { optout_reason_code: 'bx6fsa0t90x', [name]: 'eYGaxwK615G' },
    };
    const valueTypes = new Map([['bx6fsa0t90x', 'INTEGER_POSITIVE'], ['eYGaxwK615G', 'TEXT']]);
    expect(buildTrackerPayload(OPTOUT_ID, details, settings, valueTypes).events[0]!.dataValues).toEqual([{ dataElement: 'bx6fsa0t90x', value: '6' }]);
  });
});
