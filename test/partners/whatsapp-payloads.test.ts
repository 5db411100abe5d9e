import {
  buildCloudTemplateMessage,
  buildContactsCheck,
  buildOnpremTemplateMessage,
  isRetryableCode,
  isThrottlingCode,
  readErrorCode,
  readContactCheck,
  type TemplateMessage,
} from '../../src/partners/whatsapp-payloads';

const message = (overrides: Partial<TemplateMessage> = {}): TemplateMessage => ({
  to: '+27820001001',
  name: 'appointment_reminder',
  language: 'en',
  params: ['Jane', 'Monday 10:00'],
  ...overrides,
});

describe('Cloud API template message', () => {
  it.each([
    [
      'with body parameters',
      message(),
      {
        messaging_product: 'whatsapp',
        to: '+27820001001',
        type: 'template',
        template: {
          name: 'appointment_reminder',
          language: { code: 'en' },
          components: [{ type: 'body', parameters: [{ type: 'text', text: 'Jane' }, { type: 'text', text: 'Monday 10:00' }] }],
        },
      },
    ],
    [
      'without parameters (no components at all)',
      message({ name: 'hello_world', params: [] }),
      { messaging_product: 'whatsapp', to: '+27820001001', type: 'template', template: { name: 'hello_world', language: { code: 'en' } } },
    ],
    [
      'in another language',
      message({ language: 'pt_BR', params: ['Joana'] }),
      {
        messaging_product: 'whatsapp',
        to: '+27820001001',
        type: 'template',
        template: {
          name: 'appointment_reminder',
          language: { code: 'pt_BR' },
          components: [{ type: 'body', parameters: [{ type: 'text', text: 'Joana' }] }],
        },
      },
    ],
  ])('is exactly this %s', (_case, input, expected) => {
    expect(buildCloudTemplateMessage(input)).toEqual(expected);
  });
});

describe('On-Premises API (and Turn)', () => {
  it('checks one contact, blocking until WhatsApp answers', () => {
    expect(buildContactsCheck('+27820001001')).toEqual({ blocking: 'wait', contacts: ['+27820001001'] });
  });

  it.each([
    [
      'with body parameters',
      message(),
      {
        to: '27820001001',
        type: 'template',
        template: {
          namespace: 'c8ae5f90_307a_ca4c_b8f6_d1e2a2573574',
          name: 'appointment_reminder',
          language: { policy: 'deterministic', code: 'en' },
          components: [{ type: 'body', parameters: [{ type: 'text', text: 'Jane' }, { type: 'text', text: 'Monday 10:00' }] }],
        },
      },
    ],
    [
      'without parameters (no components at all)',
      message({ params: [] }),
      {
        to: '27820001001',
        type: 'template',
        template: {
          namespace: 'c8ae5f90_307a_ca4c_b8f6_d1e2a2573574',
          name: 'appointment_reminder',
          language: { policy: 'deterministic', code: 'en' },
        },
      },
    ],
    [
      'in another language',
      message({ language: 'zu', params: ['Thandi'] }),
      {
        to: '27820001001',
        type: 'template',
        template: {
          namespace: 'c8ae5f90_307a_ca4c_b8f6_d1e2a2573574',
          name: 'appointment_reminder',
          language: { policy: 'deterministic', code: 'zu' },
          components: [{ type: 'body', parameters: [{ type: 'text', text: 'Thandi' }] }],
        },
      },
    ],
  ])('sends a template message %s to the wa_id', (_case, input, expected) => {
    expect(buildOnpremTemplateMessage('27820001001', input, 'c8ae5f90_307a_ca4c_b8f6_d1e2a2573574')).toEqual(expected);
  });

  it.each([
    ['a valid contact', { contacts: [{ input: '+27820001001', status: 'valid', wa_id: '27820001001' }] }, { status: 'valid', waId: '27820001001' }],
    ['an invalid contact', { contacts: [{ input: '+27820001001', status: 'invalid' }] }, { status: 'invalid' }],
    ['a check still processing', { contacts: [{ input: '+27820001001', status: 'processing' }] }, { status: 'pending' }],
    ["Turn's sandbox, which never looks numbers up", { contacts: [{ input: '+27820001001', status: 'pending' }] }, { status: 'pending' }],
    ['a failed check', { contacts: [{ input: '+27820001001', status: 'failed' }] }, { status: 'unknown' }],
    ['a valid contact without wa_id', { contacts: [{ input: '+27820001001', status: 'valid' }] }, { status: 'unknown' }],
    ['no contacts', { contacts: [] }, { status: 'unknown' }],
    ['no body', undefined, { status: 'unknown' }],
  ])('reads the contacts check for %s', (_case, body, expected) => {
    expect(readContactCheck(body)).toEqual(expected);
  });
});

describe('WhatsApp error codes', () => {
  it('reads the code of a Cloud API error, and of the first of an On-Premises API or Turn error list', () => {
    expect(readErrorCode({ error: { message: '(#130429) Rate limit hit', type: 'OAuthException', code: 130429 } })).toBe(130429);
    expect(readErrorCode({ meta: { api_status: 'stable' }, errors: [{ code: 1026, title: 'Receiver is incapable of receiving this message' }] })).toBe(1026);
    expect(readErrorCode({ error: { code: '131056' } })).toBe(131056);
    expect(readErrorCode({ error: 'upstream timeout' })).toBeUndefined();
    expect(readErrorCode('<html>Bad Gateway</html>')).toBeUndefined();
    expect(readErrorCode({ errors: [] })).toBeUndefined();
  });

  it("knows Meta's rate-limit codes as courier does, and no others", () => {
    expect([4, 80007, 130429, 131048, 131056, 133016].every(isThrottlingCode)).toBe(true);
    expect([131026, 132001, 100, 190, 429, undefined].some(isThrottlingCode)).toBe(false);
    expect(isRetryableCode(131053)).toBe(true);
    expect(isRetryableCode(131026)).toBe(false);
  });
});
