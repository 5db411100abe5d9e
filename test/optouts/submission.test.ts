import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { needsContactLookup, optoutReason, payloadFacts, resolveContactDetails, type ContactDetails, type OptoutFacts } from '../../src/optouts/submission';
import { buildOpenhimOptout, buildTrackerPayload, MissingContactData, type SwtCodes } from '../../src/partners/nurseconnect-payloads';
import { CONTACT_UUID, OPTOUT_ID, SWT, whatsappOptoutFacts } from '../helpers/nurseconnect';
import { MAIN } from '../helpers/process';

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

/** The OpenHIM message for the resolved contact (its exact shapes: test/partners/nurseconnect-payloads.test.ts). */
function openhim(details: ContactDetails, swt: SwtCodes = SWT) {
  return buildOpenhimOptout(payloadFacts(OPTOUT_ID, details), swt);
}

const rapidproContact = {
  urns: ['tel:+27820001001', 'whatsapp:27820001001'],
  fields: { facility_code: '123456', registered_by: '+27820001002' },
};

describe('OpenHIM NurseConnect opt-out', () => {
  it('gives the payload builders exactly these facts for a contact who opted out over WhatsApp', () => {
    const details = resolveContactDetails(facts(), rapidproContact, 'ZA');
    expect(payloadFacts(OPTOUT_ID, details)).toEqual(whatsappOptoutFacts());
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
    expect(openhim(details).dmsisdn).toBe('+27820001001');
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
    expect(openhim(details).dmsisdn).toBe(dmsisdn);
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
      const p = require(${JSON.stringify(path.join(path.dirname(MAIN), 'partners', 'nurseconnect-payloads.js'))});
      const details = s.resolveContactDetails(${JSON.stringify(facts())}, { urns: ['tel:+27820001001'], fields: { facility_code: '1', opt_out_date: ${JSON.stringify(optOutDate)} } }, 'ZA');
      process.stdout.write(p.buildOpenhimOptout(s.payloadFacts('x', details), ${JSON.stringify(SWT)}).encdate);`;
    expect(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: 'Africa/Johannesburg' } }).toString()).toBe(encdate);
  });

  it('takes contact details from the webhook fields when they are there', () => {
    const webhookFacts = facts({ contactFields: { facility_code: '777777', registered_by: '27820001005' } });
    expect(needsContactLookup(webhookFacts)).toBe(false);
    const message = openhim(resolveContactDetails(webhookFacts, undefined, 'ZA'));
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
    expect(() => openhim(noFacility)).toThrow(/facility_code/);
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
    expect(openhim(details).optoutreason).toBe(7);
  });

  it('sends the swt given for the channel each opt-out came over (OPENHIM_SWT_WHATSAPP, OPENHIM_SWT_SMS)', () => {
    const swt = { whatsapp: 1, sms: 3 };
    const overWhatsapp = resolveContactDetails(facts(), rapidproContact, 'ZA');
    const overSms = resolveContactDetails(facts({ contactUrn: 'tel:+27820001001' }), rapidproContact, 'ZA');
    expect(openhim(overWhatsapp, swt).swt).toBe(1);
    expect(openhim(overSms, swt).swt).toBe(3);
  });
});

describe('DHIS2 tracker event', () => {
  it('writes the reason by the name its code has, whatever the category was called', () => {
    const details = resolveContactDetails(facts({ reasonCategory: 'Number owner change' }), rapidproContact, 'ZA');
    const reasons = {
      program: 'IpHINAT79UW',
      programStage: 'A03MvHHogjR',
      orgUnit: 'DiszpKrYNg8',
      dataElements: { optout_reason: 'eYGaxwK615G', optout_reason_code: 'bx6fsa0t90x' },
    };
    const types = new Map([['eYGaxwK615G', 'TEXT'], ['bx6fsa0t90x', 'INTEGER_POSITIVE']]);
    expect(buildTrackerPayload(payloadFacts(OPTOUT_ID, details), reasons, types).events[0]!.dataValues).toEqual([
      { dataElement: 'eYGaxwK615G', value: 'number_owner_change' },
      { dataElement: 'bx6fsa0t90x', value: '8' },
    ]);
  });
});

describe.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('the name %s, which every object inherits', (name) => {
  const details = resolveContactDetails(facts({ reasonCategory: name, reasonValue: null }), rapidproContact, 'ZA');

  it('is an unknown reason (6) for OpenHIM', () => {
    expect(openhim(details).optoutreason).toBe(6);
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
    expect(buildTrackerPayload(payloadFacts(OPTOUT_ID, details), settings, valueTypes).events[0]!.dataValues).toEqual([{ dataElement: 'bx6fsa0t90x', value: '6' }]);
  });
});
