import { randomInt, randomUUID } from 'node:crypto';
import { RETRY_ALL_LIMIT } from '../../src/admin/optout-routes';
import { eventually, optoutWebhook, queuedOptoutRow, settledOptout, startTestApp, type TestApp } from '../helpers/app';
import { openhimPartnerEnv, startFakePartner, type FakePartner, type ReceivedRequest } from '../helpers/fake-partner';
import { FakeGoogle, csrfTokenIn, signIn, signInEachRole, signInEnv } from '../helpers/google';

type Agent = Awaited<ReturnType<typeof signIn>>['agent'];

/**
 * What OpenHIM answers per contact: accept (the default), accept after 1.5 s, reject (400, quoting the
 * number with 'quote'), or fail transiently (502).
 */
const upstream = new Map<string, 'slow' | 'reject' | 'quote' | 'unavailable'>();
const sidOf = (request: ReceivedRequest) => (request.body as { sid: string }).sid;

function randomWhatsappUrn(): string {
  return `whatsapp:2782${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;
}

describe('staff pages: opt-outs', () => {
  let google: FakeGoogle;
  let partner: FakePartner;
  let app: TestApp;
  let viewer: Agent;
  let operator: Agent;
  let admin: Agent;
  let operatorEmail: string;

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    partner = await startFakePartner();
    partner.on('GET /api/v2/contacts.json', (request) => {
      const uuid = new URL(request.url, 'http://x').searchParams.get('uuid');
      return { status: 200, body: { results: [{ uuid, urns: ['whatsapp:27820001001'], fields: { facility_code: '123456' } }] } };
    });
    partner.on('POST /ws/rest/v1/nc/optout', (request) => {
      const mode = upstream.get(sidOf(request));
      if (mode === 'reject') return { status: 400, body: { error: 'bad faccode' } };
      if (mode === 'quote') return { status: 400, body: { error: `no nurse with msisdn ${(request.body as { cmsisdn: string }).cmsisdn}` } };
      if (mode === 'unavailable') return { status: 502, body: { error: 'upstream down' } };
      if (mode === 'slow') return { status: 202, body: { status: 'ok' }, delayMs: 1500 };
      return { status: 202, body: { status: 'ok' } };
    });
    app = await startTestApp({
      role: 'all',
      env: {
        ...signInEnv(google),
        ...openhimPartnerEnv(partner),
        OPTOUT_MAX_ATTEMPTS: '2',
        OPTOUT_BACKOFF_MS: '10',
      },
    });
    ({ viewer, operator, admin, emails: { operator: operatorEmail } } = await signInEachRole(app, google));
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
    await google.stop();
  });

  /** An opt-out that the worker tried and failed (OpenHIM answered 400, or 502 until it gave up). */
  async function failedOptout(options: { uuid?: string; urn?: string; category?: string; mode?: 'reject' | 'quote' | 'unavailable' } = {}) {
    const body = optoutWebhook({ uuid: options.uuid ?? randomUUID(), urn: options.urn ?? randomWhatsappUrn(), category: options.category });
    upstream.set(body.contact.uuid, options.mode ?? 'reject');
    const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
    expect(response.status).toBe(202);
    const row = await settledOptout(app, response.body.id);
    expect(row.status).toBe('failed');
    return row;
  }

  async function post(agent: Agent, path: string, form: Record<string, string | string[]> = {}) {
    const token = csrfTokenIn((await agent.get('/admin')).text);
    return agent.post(path).type('form').send({ ...form, _csrf: token });
  }

  it('lists and finds opt-outs by status, phone number or contact, masking numbers except to admins', async () => {
    const urn = randomWhatsappUrn();
    const number = `+${urn.slice('whatsapp:'.length)}`;
    const optout = await failedOptout({ urn, category: '<img src=x onerror=alert(1)>' });
    const spaced = `${number.slice(0, 3)} ${number.slice(3, 5)} ${number.slice(5, 8)} ${number.slice(8)}`;

    const forViewer = await viewer.get(`/admin/optouts?status=failed&q=${encodeURIComponent(spaced)}`);
    expect(forViewer.status).toBe(200);
    expect(forViewer.text).toContain(`/admin/optouts/${optout.id}`);
    expect(forViewer.text).not.toContain(number);
    expect(forViewer.text).toContain(`${number.slice(0, 5)}*****${number.slice(-2)}`);
    expect(forViewer.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(forViewer.text).not.toContain('<img src=x');
    expect(forViewer.text).not.toContain('name="id"'); // a viewer gets no retry checkboxes

    const forAdmin = await admin.get(`/admin/optouts?q=${optout.contactUuid}`);
    expect(forAdmin.text).toContain(number);
    expect(forAdmin.text).toMatch(/1 opt-out match/);
    expect((await admin.get(`/admin/optouts?q=${optout.id}`)).text).toContain(`/admin/optouts/${optout.id}`);
    expect((await admin.get(`/admin/optouts?status=submitted&q=${optout.contactUuid}`)).text).toMatch(/No opt-outs match/);
    // A bad status or page is ignored rather than refused; a date that is not one is refused (test/security/staff.test.ts).
    expect((await admin.get('/admin/optouts?status=lost&page=-3')).status).toBe(200);
    expect((await admin.get('/admin/optouts?from=yesterday')).status).toBe(400);
  });

  it('finds a number by part of it for admins only: everyone else must type it whole, lest the search give masked digits away', async () => {
    const urn = randomWhatsappUrn();
    const digits = urn.slice('whatsapp:'.length);
    const optout = await failedOptout({ urn });
    const link = `/admin/optouts/${optout.id}`;
    const search = (agent: Agent, q: string) => agent.get(`/admin/optouts?q=${encodeURIComponent(q)}`);
    const national = `0${digits.slice(2, 4)} ${digits.slice(4, 7)} ${digits.slice(7)}`;
    const parts = [digits.slice(0, 7), digits.slice(0, -1), digits.slice(-7)];

    for (const part of parts) expect((await search(viewer, part)).text).toMatch(/No opt-outs match/);
    // A national number is whole too: DEFAULT_COUNTRY (ZA) gives it its country code.
    for (const whole of [digits, `+${digits}`, urn, national]) {
      const page = await search(viewer, whole);
      expect(page.text).toMatch(/1 opt-out match/);
      expect(page.text).toContain(link);
    }
    expect((await viewer.get('/admin/optouts')).text).toContain('Type phone numbers in full, with the country code.');

    for (const part of [...parts, national]) expect((await search(admin, part)).text).toContain(link);
    expect((await admin.get('/admin/optouts')).text).not.toContain('Type phone numbers in full');
  });

  it("shows an opt-out's attempts as a timeline: time, HTTP status, answer and error", async () => {
    const optout = await failedOptout();
    const page = await viewer.get(`/admin/optouts/${optout.id}`);
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<ol class="timeline"><li class="attempt attempt-permanent">/);
    expect(page.text).toMatch(/try 1 · openhim/);
    expect(page.text).toContain('HTTP 400');
    expect(page.text).toContain('{&quot;error&quot;:&quot;bad faccode&quot;}');
    expect(page.text).toMatch(/openhim answered HTTP 400/);
    expect(page.text).not.toMatch(/Retry now/); // not for a viewer
    expect((await viewer.get(`/admin/optouts/${randomUUID()}`)).status).toBe(404);
    expect((await viewer.get('/admin/optouts/not-an-id')).status).toBe(404);
  });

  it("masks the numbers that OpenHIM's error and answer quote, except to admins", async () => {
    const urn = randomWhatsappUrn();
    const number = `+${urn.slice('whatsapp:'.length)}`;
    const quoted = `no nurse with msisdn ${number}`;
    const masked = `no nurse with msisdn ${number.slice(0, 5)}*****${number.slice(-2)}`;
    const optout = await failedOptout({ urn, mode: 'quote' });
    expect(optout.lastError).toContain(quoted);
    const [attempt] = await app.deps.optoutStore.attemptsOf(optout.id);
    expect(attempt).toMatchObject({ error: expect.stringContaining(quoted), response: expect.stringContaining(quoted) });

    const list = await viewer.get(`/admin/optouts?q=${optout.contactUuid}`);
    const detail = await viewer.get(`/admin/optouts/${optout.id}`);
    for (const page of [list, detail]) {
      expect(page.text).not.toContain(number);
      expect(page.text).toContain(masked);
    }
    // The last error, the attempt's error and the attempt's answer.
    expect(detail.text.split(masked)).toHaveLength(4);

    expect((await admin.get(`/admin/optouts?q=${optout.contactUuid}`)).text).toContain(quoted);
    expect((await admin.get(`/admin/optouts/${optout.id}`)).text.split(quoted)).toHaveLength(4);
  });

  it('retries a failed opt-out now: queued again with its history kept, then submitted', async () => {
    const optout = await failedOptout();
    upstream.delete(optout.contactUuid); // the upstream accepts it now
    const response = await post(operator, `/admin/optouts/${optout.id}/retry`);
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe(`/admin/optouts/${optout.id}`);
    expect((await operator.get(response.headers.location!)).text).toMatch(/1 opt-out went back into the queue and will be sent now/);

    expect(await settledOptout(app, optout.id)).toMatchObject({ status: 'submitted', attempts: 2, priorAttempts: 1, lastError: null });
    const attempts = await app.deps.optoutStore.attemptsOf(optout.id);
    expect(attempts.map((attempt) => [attempt.number, attempt.outcome])).toEqual([
      [1, 'permanent'],
      [2, 'success'],
    ]);
    expect(await app.deps.db.auditEvent.findFirst({ where: { actor: operatorEmail, action: 'optout_retry', target: optout.id } })).not.toBeNull();
    const detail = await viewer.get(`/admin/optouts/${optout.id}`);
    expect(detail.text).toMatch(/What staff did/);
    expect(detail.text).toContain(`${operatorEmail} retried opt-out`);
  });

  it('gives a retried opt-out a fresh set of OPTOUT_MAX_ATTEMPTS tries', async () => {
    const optout = await failedOptout({ mode: 'unavailable' });
    expect(optout).toMatchObject({ attempts: 2, lastError: expect.stringMatching(/^gave up after 2 attempts/) });
    await post(operator, `/admin/optouts/${optout.id}/retry`);
    const again = await settledOptout(app, optout.id);
    expect(again).toMatchObject({ status: 'failed', attempts: 4, priorAttempts: 2, lastError: expect.stringMatching(/^gave up after 2 attempts/) });
  });

  it('says so, and changes nothing, when the contact already has a queued opt-out', async () => {
    const contact = randomUUID();
    const first = await failedOptout({ uuid: contact });
    const second = await failedOptout({ uuid: contact });
    // A third opt-out of the contact is waiting in the queue (never enqueued: it stays queued).
    await app.deps.optoutStore.insertUnlessDuplicate([queuedOptoutRow((await app.deps.apiClients.authenticate(app.token))!.id, { contactUuid: contact })]);
    const single = await post(operator, `/admin/optouts/${first.id}/retry`);
    expect(single.status).toBe(303);
    expect((await operator.get(single.headers.location!)).text).toMatch(/the contact already has an opt-out in the queue/);
    const bulk = await post(operator, '/admin/optouts/retry', { scope: 'selected', id: [first.id, second.id], confirmed: 'yes' });
    expect(bulk.status).toBe(303);
    expect((await operator.get(bulk.headers.location!)).text).toMatch(/2 opt-outs stayed as they were: the contact already has an opt-out in the queue/);
    for (const id of [first.id, second.id]) expect((await app.deps.optoutStore.findById(id))?.status).toBe('failed');
  });

  it('retries the selected opt-outs, or all failed ones that match, after a confirmation that says how many', async () => {
    const urn = randomWhatsappUrn(); // one number shared by three contacts, to filter on
    const rows = [await failedOptout({ urn }), await failedOptout({ urn }), await failedOptout({ urn })];
    for (const row of rows) upstream.delete(row.contactUuid);
    const q = urn.slice('whatsapp:'.length); // the whole number: an operator sees numbers masked

    const partOfNumber = await post(operator, '/admin/optouts/retry', { scope: 'failed', q: q.slice(0, -1) });
    expect(partOfNumber.status).toBe(303);
    expect((await operator.get(partOfNumber.headers.location!)).text).toMatch(/Nothing to retry: no failed opt-outs match/);

    const nothing = await post(operator, '/admin/optouts/retry', { scope: 'selected', q });
    expect(nothing.status).toBe(303);
    expect((await operator.get(nothing.headers.location!)).text).toMatch(/Nothing to retry: select failed or cancelled opt-outs first/);

    const list = await operator.get(`/admin/optouts?q=${q}`);
    expect(list.text).toMatch(/Retry all 3 failed opt-outs that match/);
    const selected = await post(operator, '/admin/optouts/retry', { scope: 'selected', id: [rows[0]!.id], q });
    expect(selected.status).toBe(200);
    expect(selected.text).toMatch(/Retry 1 opt-out\?/);

    const ask = await post(operator, '/admin/optouts/retry', { scope: 'failed', q });
    expect(ask.status).toBe(200);
    expect(ask.text).toMatch(/<h1>Retry 3 opt-outs\?<\/h1>/);
    expect(ask.text).toMatch(/Yes, retry 3 opt-outs/);
    for (const row of rows) expect((await app.deps.optoutStore.findById(row.id))?.status).toBe('failed');

    const done = await post(operator, '/admin/optouts/retry', { scope: 'failed', q, confirmed: 'yes' });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe(`/admin/optouts?q=${q}`);
    expect((await operator.get(done.headers.location!)).text).toMatch(/3 opt-outs went back into the queue/);
    for (const row of rows) expect((await settledOptout(app, row.id)).status).toBe('submitted');
    expect(await app.deps.db.auditEvent.count({ where: { action: 'optout_retry', target: { in: rows.map((row) => row.id) } } })).toBe(3);
  });

  it('retries at most RETRY_ALL_LIMIT failed opt-outs in one go, and says how many are left', async () => {
    const urn = randomWhatsappUrn();
    const apiClientId = (await app.deps.apiClients.authenticate(app.token))!.id;
    await app.deps.db.optout.createMany({
      data: Array.from({ length: RETRY_ALL_LIMIT + 1 }, () => ({ id: randomUUID(), contactUuid: randomUUID(), contactUrn: urn, apiClientId, status: 'failed' as const })),
    });
    const ask = await post(operator, '/admin/optouts/retry', { scope: 'failed', q: urn.slice('whatsapp:'.length) });
    expect(ask.status).toBe(200);
    expect(ask.text).toMatch(/Retry 5,000 opt-outs\?/);
    expect(ask.text).toMatch(/These are the oldest; 1 more failed opt-out can be retried in the next go/);
  });

  it('cancels a failed opt-out with a reason, and only a queued or failed one', async () => {
    const optout = await failedOptout();
    const withoutReason = await post(operator, `/admin/optouts/${optout.id}/cancel`, { reason: '  ' });
    expect(withoutReason.status).toBe(400);
    expect(withoutReason.text).toMatch(/reason: say why it should not be sent/);

    const cancelled = await post(operator, `/admin/optouts/${optout.id}/cancel`, { reason: 'Duplicate of an earlier opt-out' });
    expect(cancelled.status).toBe(303);
    expect(await app.deps.optoutStore.findById(optout.id)).toMatchObject({ status: 'cancelled', cancelReason: 'Duplicate of an earlier opt-out' });
    const detail = await operator.get(`/admin/optouts/${optout.id}`);
    expect(detail.text).toMatch(/Cancelled: it will not be sent/);
    expect(detail.text).toMatch(/cancelled opt-out: “Duplicate of an earlier opt-out”/);

    const twice = await post(operator, `/admin/optouts/${optout.id}/cancel`, { reason: 'again' });
    expect(twice.status).toBe(409);
    expect(twice.text).toMatch(/This opt-out is cancelled: only a queued or failed opt-out can be cancelled/);

    // A cancelled opt-out can be sent after all.
    upstream.delete(optout.contactUuid);
    await post(operator, `/admin/optouts/${optout.id}/retry`);
    expect(await settledOptout(app, optout.id)).toMatchObject({ status: 'submitted', cancelReason: null });
    expect((await post(operator, `/admin/optouts/${optout.id}/retry`)).status).toBe(303);
    expect((await operator.get(`/admin/optouts/${optout.id}`)).text).toMatch(/Not retried: it is submitted now/);
  });

  it('refuses to cancel an opt-out that a worker is sending this moment, and lets its outcome land', async () => {
    const body = optoutWebhook({ urn: randomWhatsappUrn() });
    upstream.set(body.contact.uuid, 'slow');
    const { id } = (await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body)).body as { id: string };
    await eventually(async () => (partner.received('POST /ws/rest/v1/nc/optout').some((request) => sidOf(request) === body.contact.uuid) ? true : undefined));

    const refused = await post(operator, `/admin/optouts/${id}/cancel`, { reason: 'Sent by mistake' });
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(/This opt-out is being sent right now: try again in a minute/);
    expect(await app.deps.optoutStore.findById(id)).toMatchObject({ status: 'queued', cancelReason: null });
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted', attempts: 1, cancelReason: null });
    expect(await app.deps.db.auditEvent.findFirst({ where: { action: 'optout_cancel', target: id } })).toBeNull();
  });
});
