import { randomUUID } from 'node:crypto';
import { eventually, optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { createScratchDatabase } from '../helpers/env';
import { CONFIGURED_ADMIN, FakeGoogle, csrfTokenIn, domainAccount, signIn, signInEnv, staffEmail } from '../helpers/google';
import { createWhatsappSendStore, type WhatsappSendRecord } from '../../src/whatsapp/store';
import { sendRecord } from '../helpers/whatsapp-sends';

type Agent = Awaited<ReturnType<typeof signIn>>['agent'];

async function csrfToken(agent: Agent): Promise<string> {
  return csrfTokenIn((await agent.get('/admin')).text);
}

async function post(agent: Agent, path: string, form: Record<string, string> = {}) {
  return agent.post(path).type('form').send({ ...form, _csrf: await csrfToken(agent) });
}

describe('staff pages: overview, API clients, staff, audit log', () => {
  let google: FakeGoogle;
  let app: TestApp;
  let admin: Agent;

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    app = await startTestApp({ env: signInEnv(google) });
    admin = (await signIn(app, google, { email: CONFIGURED_ADMIN, email_verified: true, name: 'The Boss' })).agent;
  });
  afterAll(async () => {
    await app.stop();
    await google.stop();
  });

  it('shows counts by status, the queue, the oldest queued opt-out and a 30-day chart', async () => {
    // A database of this test's own: other files' opt-outs (and their workers) cannot move its counts.
    const scratch = await createScratchDatabase('pages');
    const own = await startTestApp({ env: { ...signInEnv(google), DATABASE_URL: scratch.url } });
    try {
      const ownAdmin = (await signIn(own, google, { email: CONFIGURED_ADMIN, email_verified: true })).agent;
      for (let index = 0; index < 2; index += 1) {
        expect((await own.http.post('/api/v1/optouts').set('Authorization', `Token ${own.token}`).send(optoutWebhook())).status).toBe(202);
      }
      const page = await ownAdmin.get('/admin');
      expect(page.status).toBe(200);
      const queued = Number(/<span class="figure">([\d,]+)<\/span>\s*<span class="label">queued<\/span>/.exec(page.text)![1]!.replace(/,/g, ''));
      expect(queued).toBe(2);
      // The web role alone runs no worker: the jobs wait in the queue.
      expect(page.text).toMatch(/2 jobs waiting for the worker/);
      expect(page.text).toMatch(/The oldest queued opt-out was received <a href="\/admin\/optouts\/[0-9a-f-]{36}">\d[^<]* ago<\/a>/);
      expect(page.text).toMatch(/<svg viewBox="0 0 720 240" role="img"/);
      const today = new Date().toISOString().slice(0, 10);
      expect(page.text).toMatch(new RegExp(`<title>${today}: 2 received, 0 failed</title>`));
      expect(page.text.match(/<title>\d{4}-\d{2}-\d{2}: /g)).toHaveLength(30);
    } finally {
      await own.stop();
      await scratch.drop();
    }
  });

  it('creates an API client showing its token once, lists its last use, and revokes it', async () => {
    const name = `rapidpro-${randomUUID().slice(0, 8)}`;
    const created = await post(admin, '/admin/api-clients', { name, role: 'rapidpro' });
    expect(created.status).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const token = /<code class="token">(cmp_[^<]+)<\/code>/.exec(created.text)?.[1];
    expect(token).toMatch(/^cmp_[0-9a-f]{16}_[\w-]{43}$/);
    expect((await admin.get('/admin/api-clients')).text).not.toContain(token);

    expect((await app.http.get(`/api/v1/optouts/${randomUUID()}`).set('Authorization', `Token ${token}`)).status).toBe(404);
    // The last use is written in the background of the request that used the token.
    await eventually(async () => ((await app.deps.db.apiClient.findUnique({ where: { name } }))?.lastUsedAt ? true : undefined));
    const listed = await admin.get('/admin/api-clients');
    const row = listed.text.slice(listed.text.indexOf(`<td data-label="Name">${name}</td>`));
    expect(row).toMatch(/<td data-label="Last used"><time datetime=/);

    expect((await post(admin, '/admin/api-clients', { name, role: 'rapidpro' })).status).toBe(409);
    expect((await post(admin, '/admin/api-clients', { name: 'no spaces please', role: 'rapidpro' })).status).toBe(400);

    const revoked = await post(admin, '/admin/api-clients/revoke', { name });
    expect(revoked.status).toBe(303);
    expect((await admin.get('/admin/api-clients')).text).toMatch(new RegExp(`Revoked “${name}”`));
    expect((await app.http.get(`/api/v1/optouts/${randomUUID()}`).set('Authorization', `Token ${token}`)).status).toBe(401);
    const audit = await app.deps.db.auditEvent.findMany({ where: { target: name }, orderBy: { at: 'asc' } });
    expect(audit.map((event) => [event.actor, event.action])).toEqual([
      [CONFIGURED_ADMIN, 'api_client_create'],
      [CONFIGURED_ADMIN, 'api_client_revoke'],
    ]);
  });

  it('gives roles, changes them and removes staff, but never its own or an ADMIN_EMAILS role', async () => {
    const email = staffEmail('newcomer');
    const granted = await post(admin, '/admin/staff/grant', { email: email.toUpperCase(), role: 'operator' });
    expect(granted.status).toBe(303);
    const page = await admin.get('/admin/staff');
    expect(page.text).toMatch(new RegExp(`${email} is now an? operator`));
    const member = (await app.deps.db.staffMember.findUnique({ where: { email } }))!;
    expect(member.role).toBe('operator');

    // Signing in keeps the role given beforehand.
    const { agent } = await signIn(app, google, domainAccount(email));
    expect((await agent.get('/admin')).text).toMatch(/<span class="role">operator<\/span>/);

    expect((await post(admin, `/admin/staff/${member.id}/role`, { role: 'admin' })).status).toBe(303);
    expect((await agent.get('/admin/staff')).status).toBe(200);
    const self = (await app.deps.db.staffMember.findUnique({ where: { email: CONFIGURED_ADMIN } }))!;
    const demoteBoss = await post(agent, `/admin/staff/${self.id}/role`, { role: 'viewer' });
    expect(demoteBoss.status).toBe(409);
    expect(demoteBoss.text).toMatch(/is listed in ADMIN_EMAILS/);
    expect((await post(agent, `/admin/staff/${member.id}/remove`)).status).toBe(409);
    expect((await post(admin, `/admin/staff/${member.id}/role`, { role: 'superuser' })).status).toBe(400);
    expect((await post(admin, '/admin/staff/not-an-id/remove')).status).toBe(404);

    expect((await post(admin, `/admin/staff/${member.id}/remove`)).status).toBe(303);
    expect((await agent.get('/admin')).status).toBe(302);
    expect((await admin.get('/admin/staff')).text).not.toContain(`<td data-label="Email">${email}</td>`);

    const outsider = await post(admin, '/admin/staff/grant', { email: 'consultant@elsewhere.example', role: 'viewer' });
    expect(outsider.status).toBe(303);
    expect((await admin.get('/admin/staff')).text).toMatch(/they can sign in only with an account of an allowed Google Workspace domain/);

    const actions = await app.deps.db.auditEvent.findMany({ where: { target: email }, orderBy: { at: 'asc' } });
    expect(actions.map((event) => event.action)).toEqual(['staff_grant', 'staff_role_change', 'staff_remove']);
    expect(actions[1]!.details).toEqual({ from: 'operator', to: 'admin' });
  });

  /** A staff member of the domain, signed in, whom an admin made an admin. */
  async function signInAsAdmin() {
    const email = staffEmail('admin');
    const { agent } = await signIn(app, google, domainAccount(email));
    const { id } = await app.deps.db.staffMember.update({ where: { email }, data: { role: 'admin' } });
    return { agent, id, email };
  }

  it('refuses an admin giving their own address a role on the grant form', async () => {
    const { agent, email } = await signInAsAdmin();
    const demoteSelf = await post(agent, '/admin/staff/grant', { email, role: 'viewer' });
    expect(demoteSelf.status).toBe(409);
    expect(demoteSelf.text).toMatch(/You cannot change the role of yourself/);
    expect((await app.deps.db.staffMember.findUnique({ where: { email } }))?.role).toBe('admin');
  });

  // The loser is refused; a removed loser whose request comes after the removal has no session left and is sent to sign in.
  const REFUSED = [403, undefined];
  it.each([
    ['demote', '/role', { role: 'viewer' }, [REFUSED]],
    ['remove', '/remove', {}, [REFUSED, [303, '/auth/google']]],
  ])('keeps an admin when two admins %s each other at the same moment', async (_change, action, form, loserAnswers) => {
    for (let run = 0; run < 5; run += 1) {
      const first = await signInAsAdmin();
      const second = await signInAsAdmin();
      const [firstToken, secondToken] = await Promise.all([csrfToken(first.agent), csrfToken(second.agent)]);
      const answers = await Promise.all([
        first.agent.post(`/admin/staff/${second.id}${action}`).type('form').send({ ...form, _csrf: firstToken }),
        second.agent.post(`/admin/staff/${first.id}${action}`).type('form').send({ ...form, _csrf: secondToken }),
      ]);
      const admins = await app.deps.db.staffMember.count({ where: { id: { in: [first.id, second.id] }, role: 'admin', removedAt: null } });
      expect(admins).toBe(1);
      const winner = answers.findIndex((answer) => answer.headers.location === '/admin/staff');
      const loser = answers[1 - winner]!;
      expect(loserAnswers).toContainEqual([loser.status, loser.headers.location]);
    }
  });

  it('shows the audit log, newest first, filtered by who and what', async () => {
    const page = await admin.get(`/admin/audit?actor=${encodeURIComponent(CONFIGURED_ADMIN)}&action=sign_in`);
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<td data-label="What">signed in<\/td>/);
    expect(page.text).not.toMatch(/<td data-label="What">created API client<\/td>/);
    const refused = await admin.get('/admin/audit?action=sign_in_refused');
    expect(refused.text).not.toMatch(/<td data-label="What">signed in<\/td>/);
  });

  it('marks the page’s own section in the navigation, and only it', async () => {
    const page = await admin.get('/admin/audit');
    expect(page.text).toContain('<a href="/admin/audit" aria-current="page">Audit log</a>');
    expect(page.text.match(/aria-current/g)).toHaveLength(1);
    expect(page.text).toContain('<a href="/admin/staff">Staff</a>');
  });
});

describe('staff pages: WhatsApp sends', () => {
  const template = `reminder_${randomUUID().slice(0, 8)}`;
  const send = (overrides: Partial<WhatsappSendRecord>) => sendRecord({ template, ...overrides });
  let google: FakeGoogle;
  let app: TestApp;

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    app = await startTestApp({ env: signInEnv(google) });
    // Recorded as the WhatsApp proxy records them.
    const store = createWhatsappSendStore(app.deps.db);
    await store.record(send({}));
    await store.record(
      send({ createdAt: new Date('2026-11-21T10:00:00Z'), recipient: '+27820001002', language: 'zu', upstreamStatus: null, status: 502, messageId: null, error: 'upstream unavailable for +27820001002', durationMs: 15 }),
    );
  });
  afterAll(async () => {
    await app.stop();
    await google.stop();
  });

  it('lists the sends, filtered, with numbers masked except to admins', async () => {
    const { agent: viewer } = await signIn(app, google, domainAccount());
    const failed = await viewer.get(`/admin/whatsapp?outcome=failed&template=${template.toUpperCase()}&recipient=%2B27%2082%20000%201002&from=2026-11-21&to=2026-11-21`);
    expect(failed.status).toBe(200);
    expect(failed.text).toMatch(/1 send, newest first/);
    expect(failed.text).toContain('+2782*****02');
    expect(failed.text).not.toContain('+27820001002');
    expect(failed.text).toContain('upstream unavailable for +2782*****02');
    expect(failed.text).not.toContain('wamid.1');
    expect((await viewer.get(`/admin/whatsapp?template=${template}&from=2026-11-22`)).text).toMatch(/No sends match/);
    expect((await viewer.get(`/admin/whatsapp?template=${template}&outcome=sent`)).text).toMatch(/1 send, newest first/);
    expect(failed.text).toContain('Type phone numbers in full, with the country code.');
    // Part of a number finds nothing but for admins: it would give masked digits away one by one.
    for (const part of ['%2B27%2082', '2782000100', '0001002']) {
      expect((await viewer.get(`/admin/whatsapp?template=${template}&recipient=${part}`)).text).toMatch(/No sends match/);
    }
    expect((await viewer.get(`/admin/whatsapp?template=${template}&recipient=27820001001`)).text).toMatch(/1 send, newest first/);

    const { agent: admin } = await signIn(app, google, { email: CONFIGURED_ADMIN, email_verified: true });
    const all = await admin.get(`/admin/whatsapp?template=${template}`);
    expect(all.text).toMatch(/2 sends, newest first/);
    expect(all.text).toContain('+27820001001');
    expect(all.text).toContain('upstream unavailable for +27820001002');
    expect(all.text.indexOf('+27820001002')).toBeLessThan(all.text.indexOf('+27820001001'));
    expect(all.text).not.toContain('Type phone numbers in full');
    expect((await admin.get(`/admin/whatsapp?template=${template}&recipient=%2B27%2082`)).text).toMatch(/2 sends, newest first/);
    expect((await admin.get(`/admin/whatsapp?template=${template}&recipient=0001002`)).text).toMatch(/1 send, newest first/);
  });
});
