import { createHash } from 'node:crypto';
import pg from 'pg';
import { createApiClientService } from '../../src/api-clients/service';
import { createDatabase, type Database } from '../../src/db/client';
import { createMetrics } from '../../src/ops/metrics';
import { createWhatsappClient } from '../../src/partners/whatsapp';
import { createWhatsappService } from '../../src/whatsapp/service';
import { createWhatsappSendStore } from '../../src/whatsapp/store';
import { TEST_DATABASE_URL } from '../helpers/env';
import { startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { capturingLogger, freshNumber } from './support';

const ROUTE = 'POST /v26.0/106540352242922/messages';
const TOKEN = 't0ken-secret';

describe('recording a send', () => {
  let upstream: FakePartner;
  beforeAll(async () => {
    upstream = await startFakePartner();
    upstream.on(ROUTE, { status: 200, body: { messaging_product: 'whatsapp', messages: [{ id: 'wamid.sent' }] } });
  });
  afterAll(() => upstream.stop());

  /** The service over a Cloud API fake, recording in `db`, logging to a kept logger. */
  function serviceOver(db: Database, options: { maxUnrecorded?: number } = {}) {
    const logs = capturingLogger();
    const settings = { api: 'cloud' as const, url: upstream.url, apiVersion: 'v26.0', phoneNumberId: '106540352242922', token: TOKEN, timeoutMs: 2000 };
    const metrics = createMetrics();
    const service = createWhatsappService({
      api: 'cloud',
      client: createWhatsappClient(settings, { logger: logs.logger, metrics }),
      missing: [],
      store: createWhatsappSendStore(db),
      metrics,
      ...options,
    });
    const send = (to: string, apiClientId: string) =>
      service.send({ to, name: 'hello_world', language: 'en', params: [], contactUuid: null }, { apiClientId, simulated: false, log: logs.logger });
    return { service, send, logs };
  }

  it('answers with the upstream success even when the row cannot be written, and logs it without the number', async () => {
    // A real database failure: the store's database does not exist.
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = '/companion_test_whatsapp_missing_database';
    const db = createDatabase({ url: url.toString(), poolSize: 1 });
    const { service, send, logs } = serviceOver(db);
    const to = freshNumber();
    try {
      const answer = await send(to, '00000000-0000-4000-8000-000000000000');
      expect(answer).toEqual({ status: 200, json: JSON.stringify({ messaging_product: 'whatsapp', messages: [{ id: 'wamid.sent' }] }), headers: {} });
      expect(upstream.received(ROUTE).filter((request) => (request.body as { to: string }).to === to)).toHaveLength(1);
      await service.settle();
      expect(logs.text()).toContain('whatsapp send not recorded');
      // The message id (base64 of the number, for the Cloud API) only as its SHA-256.
      expect(logs.text()).not.toContain('wamid.sent');
      expect(logs.text()).toContain(createHash('sha256').update('wamid.sent').digest('hex'));
      expect(logs.text()).not.toContain(to.slice(1));
      expect(logs.text()).not.toContain(TOKEN);
    } finally {
      await db.$disconnect();
    }
  });

  it('answers every send but leaves unrecorded, and says so, those beyond what may wait for the database', async () => {
    const db = createDatabase({ url: TEST_DATABASE_URL, poolSize: 2 });
    const { service, send, logs } = serviceOver(db, { maxUnrecorded: 2 });
    const apiClientId = (await createApiClientService(db).create(`whatsapp-unrecorded-${Date.now()}`)).id;
    // Another session holds the table: rows wait until it lets go.
    const holder = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await holder.connect();
    const numbers = [freshNumber(), freshNumber(), freshNumber()];
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE whatsapp_sends IN ACCESS EXCLUSIVE MODE');
      for (const to of numbers) expect((await send(to, apiClientId)).status).toBe(200);
      expect(logs.text()).toContain('2 sends already wait for the database');
      await holder.query('COMMIT');
      await service.settle();
      expect(await db.whatsappSend.count({ where: { recipient: { in: numbers } } })).toBe(2);
      expect(await db.whatsappSend.count({ where: { recipient: numbers[2] } })).toBe(0);
    } finally {
      await holder.end();
      await db.$disconnect();
    }
  });
});
