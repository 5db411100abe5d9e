import { startTestApp, type TestApp } from '../helpers/app';
import { startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { freshNumber, postTemplate, rapidproDefaultBody, recordedSends, withTestApp } from './support';

const TOKEN = 'turn-secret-token-0123456789';
const NAMESPACE = 'c8ae5f90_307a_ca4c_b8f6_d1e2a2573574';
const CONTACTS = 'POST /v1/contacts';
const MESSAGES = 'POST /v1/messages';
const TIMEOUT_MS = 1000;

let upstream: FakePartner;
let app: TestApp;
/** Numbers the fake contacts check calls invalid. */
const notOnWhatsapp = new Set<string>();
/** Numbers the fake contacts check gives this status without a wa_id (`pending`, `processing`). */
const undecided = new Map<string, string>();

/**
 * Turn's documented answer to `POST /v1/contacts` (https://whatsapp.turn.io/docs/api/contacts):
 * `{"contacts":[{"input","status":"valid","wa_id"}]}`; `invalid` and `processing` come without a `wa_id`
 * (the On-Premises API's Contacts reference), and Turn's sandbox always answers `pending`.
 */
function contactsAnswer(input: string) {
  const status = notOnWhatsapp.has(input) ? 'invalid' : undecided.get(input);
  return { contacts: [status ? { input, status } : { input, status: 'valid', wa_id: input.slice(1) }] };
}

beforeAll(async () => {
  upstream = await startFakePartner();
  upstream.on(CONTACTS, (request) => {
    return { status: 200, body: contactsAnswer((request.body as { contacts: string[] }).contacts[0]!) };
  });
  upstream.on(MESSAGES, (request) => ({
    status: 201,
    body: { messages: [{ id: `gBEGkYiEB1VXAglK1ZEq${(request.body as { to: string }).to.replace('+', '')}` }], meta: { api_status: 'stable' } },
  }));
  app = await startTestApp({
    env: {
      WHATSAPP_API: 'onprem',
      WHATSAPP_URL: upstream.url,
      WHATSAPP_TOKEN: TOKEN,
      WHATSAPP_NAMESPACE: NAMESPACE,
      WHATSAPP_DEFAULT_LANGUAGE: 'en_US',
      WHATSAPP_TIMEOUT_MS: String(TIMEOUT_MS),
    },
  });
});
afterAll(async () => {
  await app.stop();
  await upstream.stop();
});

const post = (body: object, query = '') => postTemplate(app, body, query);
const checked = (to: string) => upstream.received(CONTACTS).filter((request) => (request.body as { contacts: string[] }).contacts[0] === to);
const sentTo = (to: string) => upstream.received(MESSAGES).filter((request) => (request.body as { to?: string }).to === to.slice(1));
const rowsFor = (recipient: string) => recordedSends(app, recipient);

describe('POST /api/v1/whatsapp/templates (On-Premises API / Turn)', () => {
  it('checks the contact, then sends exactly the template message to its wa_id', async () => {
    const to = freshNumber();
    const response = await post({ to, template: { name: 'appointment_reminder', params: ['Jane', 'Monday'] } });

    const [check] = checked(to);
    expect(check!.body).toEqual({ blocking: 'wait', contacts: [to] });
    expect(check!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const [message, ...others] = sentTo(to);
    expect(others).toEqual([]);
    expect(message!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(message!.receivedAt).toBeGreaterThanOrEqual(check!.receivedAt);
    expect(message!.body).toEqual({
      to: to.slice(1),
      type: 'template',
      template: {
        namespace: NAMESPACE,
        name: 'appointment_reminder',
        language: { policy: 'deterministic', code: 'en_US' },
        components: [{ type: 'body', parameters: [{ type: 'text', text: 'Jane' }, { type: 'text', text: 'Monday' }] }],
      },
    });
    expect(response.status).toBe(201);
    const messageId = `gBEGkYiEB1VXAglK1ZEq${to.slice(1)}`;
    expect(response.body).toEqual({ messages: [{ id: messageId }], meta: { api_status: 'stable' } });
    expect((await rowsFor(to))[0]).toMatchObject({ api: 'onprem', template: 'appointment_reminder', language: 'en_US', upstreamStatus: 201, status: 201, messageId, error: null });
  });

  it('sends no components without parameters, and the language asked for', async () => {
    const to = freshNumber();
    const response = await post(rapidproDefaultBody(`whatsapp:${to.slice(1)}`), '?template=hello_world&language=zu');
    expect(response.status).toBe(201);
    expect(sentTo(to)[0]!.body).toEqual({
      to: to.slice(1),
      type: 'template',
      template: { namespace: NAMESPACE, name: 'hello_world', language: { policy: 'deterministic', code: 'zu' } },
    });
  });

  it('answers 404 for a number that is not on WhatsApp and sends nothing', async () => {
    const to = freshNumber();
    notOnWhatsapp.add(to);
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: 'not a WhatsApp contact' });
    expect(checked(to)).toHaveLength(1);
    expect(sentTo(to)).toEqual([]);
    expect((await rowsFor(to))[0]).toMatchObject({ upstreamStatus: 200, status: 404, messageId: null, error: 'not a WhatsApp contact' });
  });

  it('passes a failed contacts check through and sends nothing', async () => {
    const to = freshNumber();
    const body = { errors: [{ code: 1005, title: 'Access denied', details: 'invalid token' }] };
    upstream.queue(CONTACTS, { status: 401, body });
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(401);
    expect(response.body).toEqual(body);
    expect(sentTo(to)).toEqual([]);
    expect((await rowsFor(to))[0]).toMatchObject({ upstreamStatus: 401, status: 401, error: '1005 Access denied invalid token' });
  });

  it('answers 502 for a contacts check whose 200 carries errors, and sends nothing', async () => {
    const to = freshNumber();
    const body = { errors: [{ code: 1014, title: 'Internal error' }] };
    upstream.queue(CONTACTS, { status: 200, body });
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(502);
    expect(response.body).toEqual(body);
    expect(sentTo(to)).toEqual([]);
  });

  it.each([
    ['pending', "Turn's sandbox"],
    ['processing', 'a check WhatsApp has not finished'],
  ])('sends to the number itself when the contacts check says %s (%s)', async (status) => {
    const to = freshNumber();
    undecided.set(to, status);
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(checked(to)).toHaveLength(1);
    const sends = upstream.received(MESSAGES).filter((request) => (request.body as { to?: string }).to === to);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.body).toMatchObject({ to, type: 'template', template: { namespace: NAMESPACE, name: 'hello_world' } });
    expect(response.status).toBe(201);
  });

  it('answers 502 when the contacts check says failed, and sends nothing', async () => {
    const to = freshNumber();
    undecided.set(to, 'failed');
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(502);
    expect(response.body).toEqual({ error: 'contact check inconclusive' });
    expect(upstream.received(MESSAGES).filter((request) => [to, to.slice(1)].includes((request.body as { to: string }).to))).toEqual([]);
  });

  it('checks and sends to a number written without its country code, read in DEFAULT_COUNTRY', async () => {
    const to = freshNumber();
    const response = await post({ to: `0${to.slice(3)}`, template: { name: 'hello_world' } });
    expect(response.status).toBe(201);
    expect(checked(to)).toHaveLength(1);
    expect(sentTo(to)).toHaveLength(1);
  });

  it('answers 400 for a number valid in no region, naming the field, and neither checks nor sends', async () => {
    const before = upstream.requests.length;
    const response = await post({ to: '+999 123', template: { name: 'hello_world' } });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'invalid request', details: [{ path: 'to', message: expect.stringMatching(/^is not a valid phone number in any region/) }] });
    const urn = await post(rapidproDefaultBody('whatsapp:999123'), '?template=hello_world');
    expect(urn.status).toBe(400);
    expect(urn.body.details).toEqual([{ path: 'contact.urn', message: expect.stringMatching(/in any region/) }]);
    expect(upstream.requests.length).toBe(before);
  });

  it('answers 502 with the body when the send answers 200 with errors', async () => {
    const to = freshNumber();
    const body = { errors: [{ code: 2000, title: 'Number of parameters does not match the expected number of params' }] };
    upstream.queue(MESSAGES, { status: 200, body });
    const response = await post({ to, template: { name: 'appointment_reminder' } });
    expect(response.status).toBe(502);
    expect(response.body).toEqual(body);
  });

  it('gives both calls one WHATSAPP_TIMEOUT_MS between them: 504 when together they take longer', async () => {
    const to = freshNumber();
    const half = Math.round(TIMEOUT_MS * 0.6);
    upstream.queue(CONTACTS, { status: 200, body: { contacts: [{ input: to, status: 'valid', wa_id: to.slice(1) }] }, delayMs: half });
    upstream.queue(MESSAGES, { status: 201, body: { messages: [{ id: 'late' }] }, delayMs: half });
    const started = Date.now();
    const response = await post({ to, template: { name: 'hello_world' } });
    expect(response.status).toBe(504);
    expect(response.body).toEqual({ error: 'upstream timeout' });
    // Each call alone is inside the timeout: the 504 is what shows the one budget. The bound only says
    // that the companion did not wait for both answers plus a retry, with room for a loaded machine.
    expect(Date.now() - started).toBeLessThan(2 * half + 3000);
    expect(sentTo(to)).toHaveLength(1);
    expect((await rowsFor(to))[0]).toMatchObject({ upstreamStatus: null, status: 504, error: 'upstream timeout' });
  });

  it('checks and sends nothing in the simulator', async () => {
    const to = freshNumber();
    const before = upstream.requests.length;
    const response = await post({ to, template: { name: 'hello_world' } }).set('X-Mailroom-Mode', 'simulation');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ messages: [{ id: expect.stringMatching(/^simulated-/) }], simulated: true });
    expect(upstream.requests.length).toBe(before);
    expect(await rowsFor(to)).toEqual([]);
  });
});

describe('WHATSAPP_CONTACT_CHECK=false (API v2.39 and later)', () => {
  it('sends to the number without asking /v1/contacts', async () => {
    await withTestApp(
      { WHATSAPP_API: 'onprem', WHATSAPP_URL: upstream.url, WHATSAPP_TOKEN: TOKEN, WHATSAPP_NAMESPACE: NAMESPACE, WHATSAPP_CONTACT_CHECK: 'false' },
      async (unchecked) => {
        const to = freshNumber();
        const response = await postTemplate(unchecked, { to, template: { name: 'hello_world' } });
        expect(response.status).toBe(201);
        expect(checked(to)).toEqual([]);
        const sends = upstream.received(MESSAGES).filter((request) => (request.body as { to?: string }).to === to);
        expect(sends).toHaveLength(1);
        expect(sends[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
      },
    );
  });
});

describe('on-prem settings', () => {
  it('answers 503 naming the on-prem variables that are missing', async () => {
    await withTestApp({ WHATSAPP_API: 'onprem', WHATSAPP_TOKEN: TOKEN }, async (unset) => {
      const response = await postTemplate(unset, { to: '+27820001001', template: { name: 'hello_world' } });
      expect(response.status).toBe(503);
      expect(response.body).toEqual({ error: 'WhatsApp is not configured: set WHATSAPP_URL, WHATSAPP_NAMESPACE' });
    });
  });
});
