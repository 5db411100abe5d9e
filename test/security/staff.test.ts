import { randomUUID } from 'node:crypto';
import { NUMBER_SEARCHES_PER_HOUR } from '../../src/admin/number-search';
import { createWhatsappSendStore } from '../../src/whatsapp/store';
import { optoutWebhook, queuedOptoutRow, startTestApp, type TestApp } from '../helpers/app';
import { sendRecord } from '../helpers/whatsapp-sends';
import { CONFIGURED_ADMIN, FakeGoogle, csrfTokenIn, domainAccount, signIn, signInEachRole, signInEnv, staffEmail } from '../helpers/google';

type Agent = Awaited<ReturnType<typeof signIn>>['agent'];

/**
 * A Cloud API message id as WhatsApp answers it: base64 of a protobuf that holds the recipient's
 * number (`Mjc4MjAwMDEwMDE` is base64 of 27820001001), as in Meta's send-message examples.
 */
const WAMID = 'wamid.HBgLMjc4MjAwMDEwMDEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA';

async function post(agent: Agent, path: string, form: Record<string, string> = {}) {
  const token = csrfTokenIn((await agent.get('/admin')).text);
  return agent.post(path).type('form').send({ ...form, _csrf: token });
}

describe('staff pages under attack: who sees full numbers', () => {
  const template = `attack_${randomUUID().slice(0, 8)}`;
  let google: FakeGoogle;
  let app: TestApp;
  let viewer: Agent;
  let operator: Agent;
  let admin: Agent;

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    app = await startTestApp({ env: signInEnv(google) });
    ({ viewer, operator, admin } = await signInEachRole(app, google));
  });
  afterAll(async () => {
    await app.stop();
    await google.stop();
  });

  it('shows WhatsApp message ids (which hold the number) to admins only, on the page and in errors', async () => {
    const send = sendRecord({ template, messageId: WAMID });
    const store = createWhatsappSendStore(app.deps.db);
    await store.record(send);
    await store.record({ ...send, status: 502, messageId: null, error: `duplicate of ${WAMID}` });
    for (const agent of [viewer, operator]) {
      const page = await agent.get(`/admin/whatsapp?template=${template}`);
      expect(page.status).toBe(200);
      expect(page.text).toMatch(/2 sends/);
      expect(page.text).not.toContain('HBgLMjc4MjAwMDEwMDE');
      expect(page.text).toContain('<td data-label="Message id" class="excerpt"><span class="muted">hidden</span></td>');
      expect(page.text).toContain('duplicate of wamid.…');
    }
    const page = await admin.get(`/admin/whatsapp?template=${template}`);
    expect(page.text).toContain(`<td data-label="Message id" class="excerpt">${WAMID}</td>`);
    expect(page.text).toContain(`duplicate of ${WAMID}`);
  });

  it("masks numbers in a webhook's reason and a cancel reason, however written, except to admins", async () => {
    const body = optoutWebhook({ urn: 'whatsapp:27820001001' });
    body.results.optout_reason = { value: 'call +27 82 000 1004 instead', category: 'other' };
    const created = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    expect((await post(operator, `/admin/optouts/${id}/cancel`, { reason: 'asked from %2B27820001002 and x_27820001003' })).status).toBe(303);

    const masked = ['+2782*****04', '+2782*****02', 'x_27820****03'];
    const full = ['+27 82 000 1004', '%2B27820001002', 'x_27820001003'];
    for (const agent of [viewer, operator]) {
      const detail = (await agent.get(`/admin/optouts/${id}`)).text;
      const list = (await agent.get(`/admin/optouts?q=${id}`)).text;
      const audit = (await agent.get(`/admin/audit?action=optout_cancel`)).text;
      expect(detail).toContain('other · call +2782*****04 instead');
      expect(detail).toContain('asked from +2782*****02 and x_27820****03');
      expect(list).toContain('<td data-label="Reason">other</td>');
      expect(audit).toContain('reason: asked from +2782*****02 and x_27820****03');
      for (const text of full) expect([detail, audit]).not.toContainEqual(expect.stringContaining(text));
      for (const text of masked) expect(detail).toContain(text);
    }
    const detail = (await admin.get(`/admin/optouts/${id}`)).text;
    for (const text of full) expect(detail).toContain(text);
    expect((await admin.get(`/admin/audit?action=optout_cancel`)).text).toContain('reason: asked from %2B27820001002 and x_27820001003');
  });
});

describe('staff pages under attack: guessing a masked number by searching', () => {
  let google: FakeGoogle;
  let app: TestApp;

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    app = await startTestApp({ env: signInEnv(google) });
  });
  afterAll(async () => {
    await app.stop();
    await google.stop();
  });

  /** A whole number of the range a mask like +2782*****01 leaves open. */
  const guess = (index: number) => `%2B2782${String(index).padStart(5, '0')}01`;

  it(`lets staff who see numbers masked make ${NUMBER_SEARCHES_PER_HOUR} number searches an hour, each audited with the number masked, then answers 429`, async () => {
    const email = staffEmail('prober');
    const { agent } = await signIn(app, google, domainAccount(email));
    for (let index = 0; index < NUMBER_SEARCHES_PER_HOUR; index += 1) {
      const page = index % 2 ? `/admin/optouts?q=${guess(index)}` : `/admin/whatsapp?recipient=${guess(index)}`;
      expect([page, (await agent.get(page)).status]).toEqual([page, 200]);
    }
    const over = await agent.get(`/admin/optouts?q=${guess(99)}`);
    expect(over.status).toBe(429);
    expect(over.text).toContain(`You have made ${NUMBER_SEARCHES_PER_HOUR} phone-number searches in the last hour`);
    expect((await agent.get(`/admin/whatsapp?recipient=${guess(98)}`)).status).toBe(429);
    // Searches that are not for a number go on as before.
    expect((await agent.get(`/admin/optouts?q=${randomUUID()}`)).status).toBe(200);
    expect((await agent.get('/admin/optouts?status=failed')).status).toBe(200);

    const audited = await app.deps.db.auditEvent.findMany({ where: { actor: email, action: 'number_search' }, orderBy: { at: 'asc' } });
    expect(audited).toHaveLength(NUMBER_SEARCHES_PER_HOUR);
    expect(audited[0]).toMatchObject({ target: '+2782*****01', details: { page: 'whatsapp' } });
    expect(audited[1]).toMatchObject({ target: '+2782*****01', details: { page: 'optouts' } });
    const { agent: admin } = await signIn(app, google, { email: CONFIGURED_ADMIN, email_verified: true });
    expect((await admin.get(`/admin/audit?action=number_search&actor=${email}`)).text).toMatch(
      new RegExp(`${NUMBER_SEARCHES_PER_HOUR} events[\\s\\S]*searched for the phone number</td>\\s*<td data-label="Of">\\+2782\\*{5}01</td>`),
    );
  });

  it('counts searches made at once exactly, and counts the retry form, which says how many match', async () => {
    const email = staffEmail('operator');
    await app.deps.staff.grant(email, 'operator');
    const { agent } = await signIn(app, google, domainAccount(email));
    const statuses = await Promise.all(Array.from({ length: NUMBER_SEARCHES_PER_HOUR + 10 }, (_, index) => agent.get(`/admin/optouts?q=${guess(index)}`).then((r) => r.status)));
    expect(statuses.filter((status) => status === 200)).toHaveLength(NUMBER_SEARCHES_PER_HOUR);
    expect(statuses.filter((status) => status === 429)).toHaveLength(10);
    const retry = await post(agent, '/admin/optouts/retry', { scope: 'failed', q: decodeURIComponent(guess(5)) });
    expect(retry.status).toBe(429);
  });

  it('never limits or audits the searches of admins, who see numbers in full', async () => {
    const { agent } = await signIn(app, google, { email: CONFIGURED_ADMIN, email_verified: true });
    const before = await app.deps.db.auditEvent.count({ where: { actor: CONFIGURED_ADMIN, action: 'number_search' } });
    for (let index = 0; index <= NUMBER_SEARCHES_PER_HOUR; index += 1) {
      expect((await agent.get(`/admin/optouts?q=${guess(index)}`)).status).toBe(200);
    }
    expect(await app.deps.db.auditEvent.count({ where: { actor: CONFIGURED_ADMIN, action: 'number_search' } })).toBe(before);
  });
});

describe('staff pages under attack: input PostgreSQL refuses', () => {
  let google: FakeGoogle;
  let app: TestApp;
  let admin: Agent;

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    app = await startTestApp({ env: signInEnv(google) });
    admin = (await signIn(app, google, { email: CONFIGURED_ADMIN, email_verified: true })).agent;
  });
  afterAll(async () => {
    await app.stop();
    await google.stop();
  });

  it.each([
    '/admin/optouts?q=27820001001%00',
    '/admin/optouts?q=%00',
    '/admin/audit?actor=cli%00',
    '/admin/whatsapp?template=a%00b',
    '/admin/whatsapp?recipient=%2B27820001001%00',
    '/admin/optouts?from=0000-01-01',
    '/admin/optouts?to=9999-12-31',
    '/admin/optouts?from=2026-02-30',
    '/admin/optouts?from=yesterday',
    '/admin/whatsapp?from=0000-01-01',
    '/admin/whatsapp?to=0000-12-31',
    '/admin/whatsapp/queued?template=a%00b',
    '/admin/whatsapp/queued?from=0000-01-01',
  ])('refuses GET %s with a 400 page', async (path) => {
    const response = await admin.get(path);
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
  });

  it('refuses a NUL in any form field with a 400 page, and stores nothing', async () => {
    const apiClientId = (await app.deps.apiClients.authenticate(app.token))!.id;
    const row = queuedOptoutRow(apiClientId);
    await app.deps.optoutStore.insertUnlessDuplicate([row]);
    const name = `nul-${randomUUID().slice(0, 8)}`;
    const forms: Array<[string, Record<string, string>]> = [
      [`/admin/optouts/${row.id}/cancel`, { reason: 'duplicate\u0000' }],
      ['/admin/api-clients', { name, role: 'rapid\u0000pro' }],
      ['/admin/api-clients', { name: `${name}\u0000`, role: 'rapidpro' }],
      ['/admin/api-clients/revoke', { name: `${name}\u0000` }],
      ['/admin/staff/grant', { email: `a\u0000@${staffEmail().split('@')[1]}`, role: 'viewer' }],
      ['/admin/flows', { webhook: 'optout', client: 'new', client_name: name, flow_name: 'Opt\u0000out' }],
      ['/admin/flows', { webhook: 'whatsapp-template', template: 'a\u0000b', client: 'new', client_name: name }],
      ['/admin/optouts/retry', { scope: 'failed', q: '\u0000' }],
    ];
    for (const [path, form] of forms) {
      const response = await post(admin, path, form);
      expect([path, form, response.status]).toEqual([path, form, 400]);
    }
    expect((await app.deps.optoutStore.findById(row.id))?.status).toBe('queued');
    expect(await app.deps.db.apiClient.count({ where: { name: { startsWith: name } } })).toBe(0);
  });

  it('still takes empty dates and real ones', async () => {
    expect((await admin.get('/admin/optouts?from=&to=')).status).toBe(200);
    expect((await admin.get('/admin/whatsapp?from=2026-11-01&to=2026-11-30')).status).toBe(200);
    expect((await admin.get('/admin/optouts?from=1970-01-01&to=9998-12-31')).status).toBe(200);
  });
});
