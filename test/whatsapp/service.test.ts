import { createDatabase } from '../../src/db/client';
import { createMetrics } from '../../src/ops/metrics';
import { createWhatsappClient } from '../../src/partners/whatsapp';
import { createWhatsappService } from '../../src/whatsapp/service';
import { createWhatsappSendStore } from '../../src/whatsapp/store';
import { TEST_DATABASE_URL } from '../helpers/env';
import { startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { capturingLogger, freshNumber } from './support';

const ROUTE = 'POST /v26.0/106540352242922/messages';

describe('recording a send', () => {
  let upstream: FakePartner;
  beforeAll(async () => {
    upstream = await startFakePartner();
    upstream.on(ROUTE, { status: 200, body: { messaging_product: 'whatsapp', messages: [{ id: 'wamid.sent' }] } });
  });
  afterAll(() => upstream.stop());

  it('answers with the upstream success even when the row cannot be written, and logs it without the number', async () => {
    // A real database failure: the store's database does not exist.
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = '/companion_test_whatsapp_missing_database';
    const db = createDatabase({ url: url.toString(), poolSize: 1 });
    const logs = capturingLogger();
    const settings = { api: 'cloud' as const, url: upstream.url, apiVersion: 'v26.0', phoneNumberId: '106540352242922', token: 't0ken-secret', timeoutMs: 2000 };
    const metrics = createMetrics();
    const service = createWhatsappService({
      api: 'cloud',
      client: createWhatsappClient(settings, { logger: logs.logger, metrics }),
      missing: [],
      store: createWhatsappSendStore(db),
      metrics,
    });
    const to = freshNumber();
    try {
      const answer = await service.send(
        { to, name: 'hello_world', language: 'en', params: [], contactUuid: null },
        { apiClientId: '00000000-0000-4000-8000-000000000000', simulated: false, log: logs.logger },
      );
      expect(answer).toEqual({ status: 200, body: { messaging_product: 'whatsapp', messages: [{ id: 'wamid.sent' }] }, headers: {} });
      expect(upstream.received(ROUTE).filter((request) => (request.body as { to: string }).to === to)).toHaveLength(1);
      await service.settle();
      expect(logs.text()).toContain('whatsapp send not recorded');
      expect(logs.text()).toContain('wamid.sent');
      expect(logs.text()).not.toContain(to.slice(1));
      expect(logs.text()).not.toContain('t0ken-secret');
    } finally {
      await db.$disconnect();
    }
  });
});
