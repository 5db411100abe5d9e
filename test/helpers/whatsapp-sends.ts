import type { WhatsappSendRecord } from '../../src/whatsapp/store';

/** A WhatsApp send as the proxy records it: a Cloud API send that went, unless `overrides` say otherwise. */
export function sendRecord(overrides: Partial<WhatsappSendRecord>): WhatsappSendRecord {
  return {
    createdAt: new Date('2026-11-20T10:00:00Z'),
    api: 'cloud',
    recipient: '+27820001001',
    template: 'reminder',
    language: 'en',
    contactUuid: null,
    apiClientId: null,
    upstreamStatus: 200,
    status: 200,
    messageId: 'wamid.1',
    error: null,
    durationMs: 321,
    ...overrides,
  };
}
