import { randomUUID } from 'node:crypto';
import { createDatabase } from '../../src/db/client';
import { createWhatsappSendStore, type WhatsappSendRecord } from '../../src/whatsapp/store';
import { TEST_DATABASE_URL } from '../helpers/env';
import { freshNumber } from './support';

const db = createDatabase({ url: TEST_DATABASE_URL, poolSize: 4 });
afterAll(() => db.$disconnect());

function send(overrides: Partial<WhatsappSendRecord> = {}): WhatsappSendRecord {
  return {
    createdAt: new Date('2026-11-26T10:15:00.123Z'),
    api: 'onprem',
    recipient: freshNumber(),
    template: 'appointment_reminder',
    language: 'pt_BR',
    contactUuid: randomUUID(),
    apiClientId: null,
    upstreamStatus: 201,
    status: 201,
    messageId: `gBEG${randomUUID()}`,
    error: null,
    durationMs: 57,
    ...overrides,
  };
}

describe('whatsapp send store', () => {
  it('records every field as given', async () => {
    const row = send();
    await createWhatsappSendStore(db).record(row);
    expect(await db.whatsappSend.findFirst({ where: { recipient: row.recipient } })).toEqual({ id: expect.any(String), ...row });
  });

  it('records the instant whatever the session time zone', async () => {
    const tokyo = createDatabase({ url: `${TEST_DATABASE_URL}?options=-c%20timezone%3DAsia%2FTokyo`, poolSize: 1 });
    try {
      const row = send();
      await createWhatsappSendStore(tokyo).record(row);
      const [stored] = await db.$queryRaw<Array<{ same: boolean }>>`
        SELECT created_at = ${row.createdAt.toISOString()}::timestamptz AS same FROM whatsapp_sends WHERE recipient = ${row.recipient}`;
      expect(stored).toEqual({ same: true });
    } finally {
      await tokyo.$disconnect();
    }
  });

  it('writes sends that arrive together, each caller waiting for its own row', async () => {
    const store = createWhatsappSendStore(db, { slots: 1 });
    const rows = Array.from({ length: 25 }, () => send({ upstreamStatus: null, status: 504, messageId: null, error: 'upstream timeout' }));
    await Promise.all(rows.map((row) => store.record(row)));
    expect(await db.whatsappSend.count({ where: { recipient: { in: rows.map((row) => row.recipient) } } })).toBe(25);
  });

  it('keeps the good rows of a batch that holds a bad one, and rejects only the bad one', async () => {
    const store = createWhatsappSendStore(db, { slots: 1 });
    const good = [send(), send(), send()];
    const bad = send({ apiClientId: randomUUID() }); // no such API client: a foreign key violation
    const first = store.record(send()); // occupies the slot, so the next four wait and go together
    const results = await Promise.allSettled([first, store.record(good[0]!), store.record(bad), store.record(good[1]!), store.record(good[2]!)]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(await db.whatsappSend.count({ where: { recipient: { in: good.map((row) => row.recipient) } } })).toBe(3);
    expect(await db.whatsappSend.count({ where: { recipient: bad.recipient } })).toBe(0);
  });
});
