import type { OptoutPayloadFacts } from '../../src/partners/nurseconnect-payloads';

export const OPTOUT_ID = '3f1c2b7e-9a0d-4e55-8c1a-2b3c4d5e6f70';
export const CONTACT_UUID = '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f';

/** NurseConnect's default swt codes (OPENHIM_SWT_WHATSAPP, OPENHIM_SWT_SMS). */
export const SWT = { whatsapp: 7, sms: 1 };

/**
 * What the payload builders get for a nurse who opted out over WhatsApp for a job change, her contact
 * as RapidPro gives it (test/optouts/submission.test.ts resolves it so).
 */
export function whatsappOptoutFacts(overrides: Partial<OptoutPayloadFacts> = {}): OptoutPayloadFacts {
  return {
    optoutId: OPTOUT_ID,
    contactUuid: CONTACT_UUID,
    msisdn: '+27820001001',
    registeredBy: '+27820001002',
    facilityCode: '123456',
    channel: 'whatsapp',
    reasonCode: 7,
    reasonName: 'job_change',
    optOutDate: new Date('2026-11-26T10:15:00Z'),
    fields: { facility_code: '123456', registered_by: '+27820001002' },
    ...overrides,
  };
}
