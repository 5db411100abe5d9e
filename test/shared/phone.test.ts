import { readPhone, toE164 } from '../../src/shared/phone';

describe('phone numbers, read with DEFAULT_COUNTRY=ZA', () => {
  it.each([
    ['a national number with its trunk 0', '082 000 1002', '+27820001002'],
    ['00 for +', '0027 82 000 1002', '+27820001002'],
    ['the trunk (0) after the country code', '+27 (0)82 000 1002', '+27820001002'],
    ['a national number without its trunk 0', '820001002', '+27820001002'],
    ['a whatsapp: URN (country code, no +)', 'whatsapp:27820001001', '+27820001001'],
    ['a tel: URN in E.164', 'tel:+27820001001', '+27820001001'],
    ['a tel: URN RapidPro could not normalise', 'tel:0820001001', '+27820001001'],
    ['the country code without + (as RapidPro sends whatsapp: URNs)', '27820001001', '+27820001001'],
    ['another country\'s number without + (valid there, not in ZA)', '447911123456', '+447911123456'],
    ['E.164 of another country', '+44 7911 123456', '+447911123456'],
    ['dashes and dots', '082-000.1002', '+27820001002'],
    ['direction marks copied from a screen', '\u202a+27 82 000 1002\u202c', '+27820001002'],
    ['a URN with a query', 'whatsapp:27820001001?channel=x', '+27820001001'],
  ])('reads %s', (_case, value, e164) => {
    expect(readPhone(value, 'ZA')).toEqual({ ok: true, e164 });
  });

  it('reads a whatsapp: URN as international, never as a national number', () => {
    // 820001002 is a ZA number without its 0, but a whatsapp: URN carries the country code: +82 (Korea).
    expect(toE164('whatsapp:820001002', 'ZA')).not.toBe('+27820001002');
  });

  it('reads numbers without a country code in the DEFAULT_COUNTRY given', () => {
    expect(toE164('020 7946 0018', 'GB')).toBe('+442079460018');
    expect(toE164('082 000 1002', 'GB')).toBeUndefined();
  });

  it.each([
    ['valid in no region', '+999 123', 'is not a valid phone number in any region'],
    ['a whatsapp: URN valid nowhere', 'whatsapp:123', 'is not a valid phone number in any region'],
    ['too short for ZA and for any country code', '12345', 'is not a valid phone number in ZA nor with a country code'],
    ['a ZA number in a range no carrier uses', '+27 99 000 1002', 'is not a valid phone number in any region'],
    ['not a number', 'Jane', 'is not a phone number'],
    ['text around a number', 'call 082 000 1002', 'is not a phone number'],
    ['empty', '', 'is not a phone number'],
  ])('refuses a number %s, with its reason and without quoting it', (_case, value, reason) => {
    expect(readPhone(value, 'ZA')).toEqual({ ok: false, reason });
    expect(toE164(value, 'ZA')).toBeUndefined();
  });

  it('reads only numbers with their country code when no country is given', () => {
    expect(toE164('whatsapp:27820001001', undefined)).toBe('+27820001001');
    expect(toE164('+27820001001', undefined)).toBe('+27820001001');
    expect(toE164('0820001001', undefined)).toBeUndefined();
  });
});
