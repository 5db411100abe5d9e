import {
  buildOpenhimOptout,
  buildTrackerPayload,
  encounterDate,
  eventUidFor,
  MissingContactData,
  UnwritableValue,
  valueOfType,
} from '../../src/partners/nurseconnect-payloads';
import { CONTACT_UUID, OPTOUT_ID, SWT, whatsappOptoutFacts } from '../helpers/nurseconnect';

const facts = whatsappOptoutFacts;

describe('OpenHIM NurseConnect opt-out', () => {
  it('is exactly this for a contact who opted out over WhatsApp', () => {
    expect(buildOpenhimOptout(facts(), SWT)).toEqual({
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
    const overSms = facts({
      msisdn: '+27820001003',
      registeredBy: '+27820001003',
      facilityCode: '654321',
      channel: 'sms',
      reasonCode: 4,
      reasonName: 'not_useful',
      optOutDate: new Date('2026-11-20T08:00:05+02:00'),
    });
    expect(buildOpenhimOptout(overSms, SWT)).toEqual({
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

  it('refuses a contact without a facility code', () => {
    expect(() => buildOpenhimOptout(facts({ facilityCode: undefined }), SWT)).toThrow(MissingContactData);
    expect(() => buildOpenhimOptout(facts({ facilityCode: undefined }), SWT)).toThrow(/facility_code/);
  });

  it('sends the swt given for each channel (OPENHIM_SWT_WHATSAPP, OPENHIM_SWT_SMS)', () => {
    const swt = { whatsapp: 1, sms: 3 };
    expect(buildOpenhimOptout(facts(), swt).swt).toBe(1);
    expect(buildOpenhimOptout(facts({ channel: 'sms' }), swt).swt).toBe(3);
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
    expect(buildTrackerPayload(facts(), settings, valueTypes)).toEqual({
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
    const noFacility = facts({ facilityCode: undefined, fields: {} });
    expect(buildTrackerPayload(noFacility, settings, valueTypes).events[0]!.orgUnit).toBe('DiszpKrYNg8');
    expect(() => buildTrackerPayload(noFacility, { ...settings, orgUnit: undefined }, valueTypes)).toThrow(MissingContactData);
  });

  it('writes the opt-out date as its data element takes it: yyyy-MM-dd for DATE, ISO 8601 for DATETIME', () => {
    const dated = facts({ optOutDate: new Date('2026-11-20T00:30:05+02:00'), fields: { opt_out_date: '2026-11-20T00:30:05+02:00', visit: '2026-11-19' } });
    const dates = { ...settings, dataElements: { opt_out_date: 'eYGaxwK615G', visit: 'fYGaxwK615G' } };
    const write = (types: string[]) =>
      buildTrackerPayload(dated, dates, new Map([['eYGaxwK615G', types[0]!], ['fYGaxwK615G', types[1]!]])).events[0]!.dataValues;
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

  it('writes the reason by its name and its code', () => {
    const reasons = { ...settings, dataElements: { optout_reason: 'eYGaxwK615G', optout_reason_code: 'bx6fsa0t90x' } };
    const types = new Map([['eYGaxwK615G', 'TEXT'], ['bx6fsa0t90x', 'INTEGER_POSITIVE']]);
    expect(buildTrackerPayload(facts({ reasonCode: 8, reasonName: 'number_owner_change' }), reasons, types).events[0]!.dataValues).toEqual([
      { dataElement: 'eYGaxwK615G', value: 'number_owner_change' },
      { dataElement: 'bx6fsa0t90x', value: '8' },
    ]);
  });

  it('refuses a value its data element cannot take, or an element DHIS2 does not list, naming the element but not the value', () => {
    const visits = { ...settings, dataElements: { visit: 'fYGaxwK615G' } };
    const build = (types: Map<string, string>) => () => buildTrackerPayload(facts({ fields: { visit: 'last Tuesday' } }), visits, types);
    expect(build(new Map([['fYGaxwK615G', 'DATE']]))).toThrow(UnwritableValue);
    expect(build(new Map([['fYGaxwK615G', 'DATE']]))).toThrow('the visit value cannot be written as DATE for data element fYGaxwK615G');
    expect(build(new Map())).toThrow("data element fYGaxwK615G (visit) is not in DHIS2's metadata");
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('sends nothing for %s, a field the contact does not have but every object inherits', (name) => {
    const inherited = {
      program: 'IpHINAT79UW',
      programStage: 'A03MvHHogjR',
      orgUnit: undefined,
      // A computed key: an own property even for __proto__, as JSON.parse makes it.
      dataElements: { optout_reason_code: 'bx6fsa0t90x', [name]: 'eYGaxwK615G' },
    };
    const types = new Map([['bx6fsa0t90x', 'INTEGER_POSITIVE'], ['eYGaxwK615G', 'TEXT']]);
    expect(buildTrackerPayload(facts({ reasonCode: 6, reasonName: 'unknown' }), inherited, types).events[0]!.dataValues).toEqual([
      { dataElement: 'bx6fsa0t90x', value: '6' },
    ]);
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
