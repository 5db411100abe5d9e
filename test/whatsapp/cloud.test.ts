import pg from 'pg';
import { ANSWER_LIMIT_BYTES } from '../../src/partners/http-client';
import { startTestApp, type TestApp } from '../helpers/app';
import { TEST_DATABASE_URL } from '../helpers/env';
import { startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { capturingLogger, closedPortUrl, cloudAccepted, cloudTemplateMessage, freshNumber, postTemplate, rapidproDefaultBody, recordedSends, withTestApp } from './support';

const TOKEN = 'EAAG-cloud-secret-token-0123456789';
const PHONE_NUMBER_ID = '106540352242922';
const ROUTE = `POST /v26.0/${PHONE_NUMBER_ID}/messages`;
const TIMEOUT_MS = 400;

let upstream: FakePartner;
let app: TestApp;
const logs = capturingLogger();

beforeAll(async () => {
  upstream = await startFakePartner();
  upstream.on(ROUTE, (request) => cloudAccepted((request.body as { to: string }).to));
  app = await startTestApp({
    logger: logs.logger,
    env: {
      WHATSAPP_URL: upstream.url,
      WHATSAPP_TOKEN: TOKEN,
      WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID,
      WHATSAPP_TIMEOUT_MS: String(TIMEOUT_MS),
    },
  });
});
afterAll(async () => {
  await app.stop();
  await upstream.stop();
});

const post = (body: object, query = '') => postTemplate(app, body, query);
const sentTo = (to: string) => upstream.received(ROUTE).filter((request) => (request.body as { to?: string }).to === to);
const rowsFor = (recipient: string) => recordedSends(app, recipient);
const template = { name: 'appointment_reminder' };

describe('POST /api/v1/whatsapp/templates (Cloud API)', () => {
  it('sends exactly the Cloud API body with parameters and answers with the upstream answer', async () => {
    const to = freshNumber();
    const response = await post({ to, template: { name: 'appointment_reminder', language: 'en', params: ['Jane', 'Monday'] } });

    const [request, ...others] = sentTo(to);
    expect(others).toEqual([]);
    expect(request!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(request!.headers['content-type']).toMatch(/^application\/json/);
    expect(request!.body).toEqual(cloudTemplateMessage(to, 'appointment_reminder', 'en', ['Jane', 'Monday']));
    expect(response.status).toBe(200);
    const messageId = response.body.messages[0].id as string;
    expect(response.body).toEqual({ messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to.slice(1) }], messages: [{ id: messageId }] });

    const [row] = await rowsFor(to);
    expect(row).toMatchObject({
      api: 'cloud',
      recipient: to,
      template: 'appointment_reminder',
      language: 'en',
      upstreamStatus: 200,
      status: 200,
      messageId,
      error: null,
      apiClientId: expect.any(String),
    });
    expect(row!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('leaves out components for a template without parameters', async () => {
    const to = freshNumber();
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(200);
    expect(sentTo(to)[0]!.body).toEqual({ messaging_product: 'whatsapp', to, type: 'template', template: { name: 'hello_world', language: { code: 'en' } } });
  });

  it("keeps RapidPro's default body: recipient from contact.urn, template from the query", async () => {
    const to = freshNumber();
    const body = rapidproDefaultBody(`whatsapp:${to.slice(1)}`);
    const response = await post(body, '?template=appointment_reminder&language=pt_BR&param=Joana&param=segunda-feira');
    expect(response.status).toBe(200);
    expect(sentTo(to)[0]!.body).toEqual(cloudTemplateMessage(to, 'appointment_reminder', 'pt_BR', ['Joana', 'segunda-feira']));
    expect((await rowsFor(to))[0]).toMatchObject({ language: 'pt_BR', contactUuid: body.contact.uuid });
  });

  it('takes a tel: URN as the recipient too', async () => {
    const to = freshNumber();
    const response = await post(rapidproDefaultBody(`tel:${to}`), '?template=hello_world');
    expect(response.status).toBe(200);
    expect(sentTo(to)).toHaveLength(1);
  });

  it('passes a Cloud API error through with its status and body, and records it', async () => {
    const to = freshNumber();
    const error = {
      error: {
        message: '(#132000) Number of parameters does not match the expected number of params',
        type: 'OAuthException',
        code: 132000,
        error_data: { messaging_product: 'whatsapp', details: 'body: number of localizable_params (0) does not match the expected number of params (1)' },
        fbtrace_id: 'AbCdEfGh',
      },
    };
    upstream.queue(ROUTE, { status: 400, body: error });
    const response = await post({ to, template: { name: 'appointment_reminder' } });
    expect(response.status).toBe(400);
    expect(response.body).toEqual(error);
    expect((await rowsFor(to))[0]).toMatchObject({ upstreamStatus: 400, status: 400, messageId: null, error: expect.stringContaining('132000') });
  });

  it('records a send whose upstream answer holds what PostgreSQL cannot store (NUL) or an overlong message id', async () => {
    const refused = freshNumber();
    upstream.queue(ROUTE, { status: 400, body: { error: { message: 'bad\u0000param', code: 100 } } });
    expect((await post({ to: refused, template })).status).toBe(400);
    const sent = freshNumber();
    upstream.queue(ROUTE, cloudAccepted(sent, `wamid.\u0000${'x'.repeat(10_000)}`));
    expect((await post({ to: sent, template })).status).toBe(200);

    expect((await rowsFor(refused))[0]).toMatchObject({ status: 400, error: expect.stringContaining('bad\uFFFDparam') });
    const [row] = await rowsFor(sent);
    expect(row!.messageId).toMatch(/^wamid\.\uFFFDx+$/);
    expect(row!.messageId).toHaveLength(256);
  });

  it('answers 502 for an answer too large to read, and records its status', async () => {
    const to = freshNumber();
    upstream.queue(ROUTE, { status: 200, rawBody: 'x'.repeat(ANSWER_LIMIT_BYTES + 1) });
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(502);
    expect(response.body).toEqual({ error: `upstream answer larger than ${ANSWER_LIMIT_BYTES} bytes` });
    expect((await rowsFor(to))[0]).toMatchObject({ upstreamStatus: 200, status: 502, messageId: null, error: response.body.error });
  });

  it('records how long the upstream took to answer', async () => {
    const to = freshNumber();
    upstream.queue(ROUTE, { ...cloudAccepted(to), delayMs: 150 });
    expect((await post({ to, template })).status).toBe(200);
    const [row] = await rowsFor(to);
    expect(row!.durationMs).toBeGreaterThanOrEqual(150);
  });

  it("answers 502 with the body when a 200 carries a Cloud API error object ('error', not 'errors')", async () => {
    const to = freshNumber();
    const body = { error: { message: '(#131026) Message undeliverable', type: 'OAuthException', code: 131026, fbtrace_id: 'AbCdEfGh' } };
    upstream.queue(ROUTE, { status: 200, body });
    const response = await post({ to, template });
    expect(response.status).toBe(502);
    expect(response.body).toEqual(body);
    expect((await rowsFor(to))[0]).toMatchObject({ upstreamStatus: 200, status: 502, messageId: null, error: expect.stringContaining('131026') });
  });

  it('answers 502 with the body when a 200 carries errors', async () => {
    const to = freshNumber();
    const body = { errors: [{ code: 1006, title: 'Resource not found', details: 'unknown template' }] };
    upstream.queue(ROUTE, { status: 200, body });
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(502);
    expect(response.body).toEqual(body);
    expect((await rowsFor(to))[0]).toMatchObject({ upstreamStatus: 200, status: 502, error: '1006 Resource not found unknown template' });
  });

  it('passes a rate limit through with its Retry-After, and does not retry', async () => {
    const to = freshNumber();
    const body = { error: { message: '(#130429) Rate limit hit', type: 'OAuthException', code: 130429 } };
    upstream.queue(ROUTE, { status: 429, body, headers: { 'retry-after': '30' } });
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(429);
    expect(response.headers['retry-after']).toBe('30');
    expect(response.body).toEqual(body);
    expect(sentTo(to)).toHaveLength(1);
  });

  it('does not retry a 5xx either', async () => {
    const to = freshNumber();
    upstream.queue(ROUTE, { status: 503, body: { error: { message: 'Service temporarily unavailable', code: 2 } } });
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(503);
    expect(sentTo(to)).toHaveLength(1);
  });

  it('answers an upstream answer that is not a JSON object with its status and a JSON error', async () => {
    const to = freshNumber();
    upstream.queue(ROUTE, { status: 502, body: '<html>Bad gateway</html>' });
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(502);
    expect(response.body).toEqual({ error: 'upstream answered HTTP 502 without a JSON object' });
  });

  it('answers 504 when the upstream does not answer within WHATSAPP_TIMEOUT_MS, after one try', async () => {
    const to = freshNumber();
    // An answer at 1.5 × the timeout: a client that waited any longer than WHATSAPP_TIMEOUT_MS would get it and answer 200.
    upstream.queue(ROUTE, { ...cloudAccepted(to), delayMs: TIMEOUT_MS * 1.5 });
    const started = Date.now();
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(504);
    expect(response.body).toEqual({ error: 'upstream timeout' });
    // Well inside RapidPro's 15 s, with room for a loaded machine; the 504 above is what pins the timeout.
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 5000);
    expect(sentTo(to)).toHaveLength(1);
    expect((await rowsFor(to))[0]).toMatchObject({ upstreamStatus: null, status: 504, messageId: null, error: 'upstream timeout' });
  });

  it('reuses one kept-alive connection for consecutive sends', async () => {
    const numbers = [freshNumber(), freshNumber(), freshNumber()];
    for (const to of numbers) expect((await post({ to, template: { name: 'hello_world' } })).status).toBe(200);
    const ports = new Set(numbers.map((to) => sentTo(to)[0]!.remotePort));
    expect(ports.size).toBe(1);
  });

  it('answers without waiting for the row, which is written once the database lets it', async () => {
    // Another session holds the table: the INSERT waits until it lets go.
    const holder = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await holder.connect();
    const to = freshNumber();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE whatsapp_sends IN ACCESS EXCLUSIVE MODE');
      const response = await post({ to, template: { name: 'hello_world' } });
      expect(response.status).toBe(200);
      const settled = app.deps.whatsapp.settle().then(() => 'settled');
      expect(await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, 200, 'waiting'))])).toBe('waiting');
      await holder.query('COMMIT');
      expect(await settled).toBe('settled');
    } finally {
      await holder.end();
    }
    expect(await rowsFor(to)).toEqual([expect.objectContaining({ status: 200, messageId: expect.any(String) })]);
  });

  it('validates, answers simulated, and neither sends nor records in the simulator', async () => {
    const to = freshNumber();
    const before = upstream.requests.length;
    const response = await post({ to, template: { name: 'hello_world', params: ['x'] } }).set('X-Mailroom-Mode', 'simulation');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ messaging_product: 'whatsapp', messages: [{ id: expect.stringMatching(/^simulated-/) }], simulated: true });
    const invalid = await post({ to, template: { name: 'Not A Template' } }).set('X-Mailroom-Mode', 'simulation');
    expect(invalid.status).toBe(400);
    expect(upstream.requests.length).toBe(before);
    expect(await rowsFor(to)).toEqual([]);
  });

  it.each([
    ['no recipient', { template: { name: 'hello_world' } }, '', [{ path: 'to', message: expect.any(String) }]],
    ['no template', { to: '+27820001001' }, '', [{ path: 'template.name', message: expect.any(String) }]],
    ['a URN of another scheme', rapidproDefaultBody('telegram:12345678'), '?template=hello_world', [{ path: 'contact.urn', message: expect.any(String) }]],
    ['a bad query language', { to: '+27820001001' }, '?template=hello_world&language=English', [{ path: 'query.language', message: expect.any(String) }]],
  ])('answers 400 for %s and sends nothing', async (_case, body, query, details) => {
    const before = upstream.requests.length;
    const response = await post(body, query);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'invalid request', details });
    expect(upstream.requests.length).toBe(before);
  });

  it('answers 401 without a token and sends nothing', async () => {
    const before = upstream.requests.length;
    const response = await app.http.post('/api/v1/whatsapp/templates').send({ to: '+27820001001', template: { name: 'hello_world' } });
    expect(response.status).toBe(401);
    expect(upstream.requests.length).toBe(before);
  });

  it('never shows the upstream token or a full phone number in logs or answers', async () => {
    const to = freshNumber();
    upstream.queue(ROUTE, { status: 401, body: { error: { message: 'Invalid OAuth access token.', code: 190 } } });
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(JSON.stringify(response.body)).not.toContain(TOKEN);
    expect(logs.text()).toContain('whatsapp template not sent');
    expect(logs.text()).not.toContain(TOKEN);
    expect(logs.text()).not.toContain(to.slice(1));
  });

  it("masks the recipient's number where the upstream's error message quotes it", async () => {
    const to = freshNumber();
    upstream.queue(ROUTE, { status: 400, body: { error: { message: `(#131030) Recipient ${to} not in allowed list`, code: 131030 } } });
    expect((await post({ to, template: { name: 'hello_world' } })).status).toBe(400);
    expect(logs.text()).toContain('131030) Recipient +2782');
    expect(logs.text()).not.toContain(to.slice(1));
  });
});

describe('POST /api/v1/whatsapp/templates, upstream down or unset', () => {
  it('answers 502 upstream unavailable when nothing listens, and records it', async () => {
    const env = { WHATSAPP_URL: await closedPortUrl(), WHATSAPP_TOKEN: TOKEN, WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID };
    await withTestApp(env, async (broken) => {
      const to = freshNumber();
      const response = await postTemplate(broken, { to, template: { name: 'hello_world' } });
      expect(response.status).toBe(502);
      expect(response.body).toEqual({ error: 'upstream unavailable' });
      expect((await recordedSends(broken, to))[0]).toMatchObject({ upstreamStatus: null, status: 502, error: 'upstream unavailable (ECONNREFUSED)' });
    });
  });

  it('starts without WhatsApp settings and answers 503 naming what is missing', async () => {
    await withTestApp({}, async (unset) => {
      const response = await postTemplate(unset, { to: '+27820001001', template: { name: 'hello_world' } });
      expect(response.status).toBe(503);
      expect(response.body).toEqual({ error: 'WhatsApp is not configured: set WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID' });
    });
  });
});

describe('WhatsApp metrics', () => {
  it('counts sends by outcome in /metrics', async () => {
    // Read as numbers at once: prom-client hands out its live value objects.
    const count = async (outcome: string) =>
      (await app.deps.metrics.whatsappSends.get()).values.filter((value) => value.labels.outcome === outcome).reduce((sum, value) => sum + value.value, 0);
    const [failedBefore, sentBefore] = [await count('failed'), await count('sent')];
    const to = freshNumber();
    upstream.queue(ROUTE, { status: 400, body: { error: { code: 132000, message: 'params mismatch' } } });
    expect((await post({ to, template: { name: 'optout_done' } })).status).toBe(400);
    expect((await post({ to, template: { name: 'optout_done' } })).status).toBe(200);
    expect((await count('failed')) - failedBefore).toBe(1);
    expect((await count('sent')) - sentBefore).toBe(1);
    expect((await app.http.get('/metrics')).text).toMatch(/companion_whatsapp_sends_total\{outcome="failed",status="400",service="companion"\} \d+/);
  });
});
