import { randomUUID } from 'node:crypto';
import supertest from 'supertest';
import { queuedOptoutRow, startTestApp, type TestApp } from '../helpers/app';
import { storedTemplateSend } from '../helpers/template-sends';
import {
  CONFIGURED_ADMIN,
  FakeGoogle,
  STAFF_DOMAIN,
  type GoogleAccount,
  csrfTokenIn,
  domainAccount,
  signIn,
  signInEnv,
  staffEmail,
} from '../helpers/google';

const SOME_ID = randomUUID();
const PAGES = [
  '/admin',
  '/admin/optouts',
  `/admin/optouts/${SOME_ID}`,
  '/admin/whatsapp',
  '/admin/whatsapp/queued',
  `/admin/whatsapp/queued/${SOME_ID}`,
  '/admin/api-clients',
  '/admin/flows',
  '/admin/staff',
  '/admin/audit',
  '/admin/no-such-page',
];
const FORMS = [
  '/admin/optouts/retry',
  `/admin/optouts/${SOME_ID}/retry`,
  `/admin/optouts/${SOME_ID}/cancel`,
  '/admin/whatsapp/queued/retry',
  `/admin/whatsapp/queued/${SOME_ID}/retry`,
  `/admin/whatsapp/queued/${SOME_ID}/cancel`,
  '/admin/api-clients',
  '/admin/api-clients/revoke',
  '/admin/flows',
  '/admin/staff/grant',
  `/admin/staff/${SOME_ID}/role`,
  `/admin/staff/${SOME_ID}/remove`,
];

function sessionCookie(setCookie: string[] | string | undefined): string | undefined {
  const cookies = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  return cookies.find((cookie) => cookie.startsWith('companion.sid='));
}

describe('staff sign-in and access', () => {
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

  /** Minutes until the store lets the cookie's session expire (the cookie holds `s:<id>.<signature>`). */
  async function storedExpiryMinutes(cookie: string): Promise<number> {
    const sid = /^s:([^.]+)\./.exec(decodeURIComponent(cookie.split(';')[0]!.split('=')[1]!))![1]!;
    const [row] = await app.deps.db.$queryRaw<Array<{ expire: Date }>>`SELECT expire FROM staff_sessions WHERE sid = ${sid}`;
    return (row!.expire.getTime() - Date.now()) / 60_000;
  }

  it('sends every /admin page and form without a session to /auth/google', async () => {
    for (const path of PAGES) {
      const response = await app.http.get(path);
      expect([path, response.status, response.headers.location]).toEqual([path, 302, '/auth/google']);
    }
    for (const path of FORMS) {
      const response = await app.http.post(path).type('form').send({ _csrf: 'x' });
      expect([path, response.status, response.headers.location]).toEqual([path, 303, '/auth/google']);
    }
  });

  it('asks Google for the address with state and PKCE (no domain hint: an ADMIN_EMAILS address lies outside it)', async () => {
    const response = await app.http.get('/auth/google');
    expect(response.status).toBe(302);
    const url = new URL(response.headers.location!);
    expect(`${url.origin}${url.pathname}`).toBe(`${google.url}/authorize`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: 'companion-test.apps.googleusercontent.com',
      redirect_uri: `${app.baseUrl}/auth/google/callback`,
      scope: 'openid email profile',
      prompt: 'select_account',
      code_challenge_method: 'S256',
      state: expect.stringMatching(/.{16,}/),
      code_challenge: expect.stringMatching(/.{40,}/),
    });
    expect(url.searchParams.has('hd')).toBe(false);
  });

  it('signs a verified account of the domain in as a viewer, in a new session, and back to the page asked for', async () => {
    const agent = supertest.agent(app.baseUrl);
    const asked = await agent.get('/admin/audit?actor=cli');
    expect(asked.headers.location).toBe('/auth/google');
    const before = sessionCookie(asked.headers['set-cookie']);
    expect(before).toMatch(/; HttpOnly/);
    expect(before).toMatch(/; SameSite=Lax/);
    expect(before).not.toMatch(/; Secure/);
    // Anyone can have a session stored before signing in: it lasts minutes, the signed-in one hours.
    const minutesLeft = (cookie: string) => (Date.parse(/; Expires=([^;]+)/.exec(cookie)![1]!) - Date.now()) / 60_000;
    expect(minutesLeft(before!)).toBeLessThan(10.1);
    expect(await storedExpiryMinutes(before!)).toBeLessThan(10.1);

    const email = staffEmail('viewer');
    google.nextAccount(domainAccount(email));
    const start = await agent.get('/auth/google');
    const authorize = await fetch(start.headers.location!, { redirect: 'manual' });
    const callback = new URL(authorize.headers.get('location')!);
    const signedIn = await agent.get(`${callback.pathname}${callback.search}`);
    expect(signedIn.status).toBe(302);
    expect(signedIn.headers.location).toBe('/admin/audit?actor=cli');
    const after = sessionCookie(signedIn.headers['set-cookie']);
    expect(after!.split(';')[0]).not.toBe(before!.split(';')[0]);
    expect(minutesLeft(after!)).toBeGreaterThan(11 * 60);
    expect(await storedExpiryMinutes(after!)).toBeGreaterThan(11 * 60);

    const page = await agent.get('/admin');
    expect(page.status).toBe(200);
    expect(page.text).toContain(email);
    expect(page.text).toMatch(/<span class="role">viewer<\/span>/);
    expect(await app.deps.db.staffMember.findUnique({ where: { email } })).toMatchObject({ role: 'viewer', name: 'Test Person' });
    expect(await app.deps.db.auditEvent.findFirst({ where: { actor: email, action: 'sign_in' } })).not.toBeNull();
  });

  it('refuses a callback whose state was not issued to this browser', async () => {
    const agent = supertest.agent(app.baseUrl);
    google.nextAccount(domainAccount());
    const start = await agent.get('/auth/google');
    const authorize = await fetch(start.headers.location!, { redirect: 'manual' });
    const callback = new URL(authorize.headers.get('location')!);
    // Another browser (no session) presents the same code and state.
    const stranger = await app.http.get(`${callback.pathname}${callback.search}`);
    expect(stranger.status).toBe(403);
    expect(stranger.text).toMatch(/could not be completed/);
    callback.searchParams.set('state', 'forged');
    const forged = await agent.get(`${callback.pathname}${callback.search}`);
    expect(forged.status).toBe(403);
    expect((await agent.get('/admin')).status).toBe(302);
  });

  it("shows fixed wording, never the callback's error_description, when Google's answer is a refusal", async () => {
    const planted = 'Your account is locked. Call our support desk';
    const query = new URLSearchParams({ error: 'access_denied', error_description: `${planted} on +15550100123` });
    const response = await app.http.get(`/auth/google/callback?${query}`);
    expect(response.status).toBe(403);
    expect(response.text).toMatch(/could not be completed/);
    expect(response.text).not.toContain(planted);
    // Logged for whoever looks into it, with the number masked.
    const logs = app.logs.join('');
    expect(logs).toContain(planted);
    expect(logs).not.toContain('+15550100123');
  });

  it.each<[string, GoogleAccount, RegExp]>([
    ['another Workspace domain', { email: 'someone@other.example.com', email_verified: true, hd: 'other.example.com' }, /belongs to the Google Workspace of other\.example\.com/],
    ['a personal account with a domain address', { email: `x@${STAFF_DOMAIN}`, email_verified: true }, /personal Google account/],
    ['an unverified address', { email: staffEmail(), email_verified: false, hd: STAFF_DOMAIN }, /has not verified the address/],
    ['an unverified ADMIN_EMAILS address', { email: CONFIGURED_ADMIN, email_verified: false }, /has not verified/],
    ['no address at all', { hd: STAFF_DOMAIN }, /did not tell us the email address/],
  ])('refuses %s with a page that says why', async (_case, account, reason) => {
    const { agent, response } = await signIn(app, google, account);
    expect(response.status).toBe(403);
    expect(response.headers['content-type']).toMatch(/text\/html/);
    expect(response.text).toMatch(/You cannot use these pages/);
    expect(response.text).toMatch(reason);
    expect((await agent.get('/admin')).status).toBe(302);
    if (account.email) {
      // An unverified address may be anyone's: the audit log does not attribute the attempt to its owner.
      const actor = account.email_verified ? account.email : `${account.email} (unverified)`;
      expect(await app.deps.db.auditEvent.findFirst({ where: { actor, action: 'sign_in_refused' } })).not.toBeNull();
    }
  });

  it('makes an ADMIN_EMAILS address an admin, whatever its domain', async () => {
    const { agent, response } = await signIn(app, google, { email: CONFIGURED_ADMIN.toUpperCase(), email_verified: true });
    expect(response.status).toBe(302);
    const staffPage = await agent.get('/admin/staff');
    expect(staffPage.status).toBe(200);
    expect(staffPage.text).toContain(CONFIGURED_ADMIN);
    expect((await app.deps.db.staffMember.findUnique({ where: { email: CONFIGURED_ADMIN } }))?.role).toBe('admin');
  });

  it("answers a viewer's retry with 403, and a viewer's admin page with 403", async () => {
    const { agent } = await signIn(app, google, domainAccount());
    const page = await agent.get('/admin/optouts');
    const token = csrfTokenIn(page.text);
    const retry = await agent.post(`/admin/optouts/${SOME_ID}/retry`).type('form').send({ _csrf: token });
    expect(retry.status).toBe(403);
    expect(retry.text).toMatch(/This needs the operator role, and you are a viewer/);
    const bulk = await agent.post('/admin/optouts/retry').type('form').send({ _csrf: token, scope: 'failed' });
    expect(bulk.status).toBe(403);
    expect((await agent.get('/admin/api-clients')).status).toBe(403);
    expect((await agent.get('/admin/staff')).status).toBe(403);
  });

  it("answers a viewer's cancel of a real queued opt-out with 403, and the opt-out stays queued", async () => {
    const apiClientId = (await app.deps.apiClients.authenticate(app.token))!.id;
    const row = queuedOptoutRow(apiClientId);
    await app.deps.optoutStore.insertUnlessDuplicate([row]);
    const { agent } = await signIn(app, google, domainAccount());
    const token = csrfTokenIn((await agent.get('/admin/optouts')).text);
    const cancel = await agent.post(`/admin/optouts/${row.id}/cancel`).type('form').send({ reason: 'duplicate', _csrf: token });
    expect(cancel.status).toBe(403);
    expect(cancel.text).toMatch(/This needs the operator role, and you are a viewer/);
    expect((await app.deps.optoutStore.findById(row.id))?.status).toBe('queued');
    expect(await app.deps.db.auditEvent.count({ where: { action: 'optout_cancel', target: row.id } })).toBe(0);
  });

  it("answers every one of an admin's forms without its CSRF token with 403, and changes nothing", async () => {
    const { agent } = await signIn(app, google, { email: CONFIGURED_ADMIN, email_verified: true });
    expect((await agent.get('/admin/staff')).status).toBe(200); // an admin: the role would let every form through
    const apiClientId = (await app.deps.apiClients.authenticate(app.token))!.id;
    const row = queuedOptoutRow(apiClientId);
    await app.deps.optoutStore.insertUnlessDuplicate([row]);
    const member = await app.deps.staff.grant(staffEmail('csrf-target'), 'viewer');
    const send = await storedTemplateSend(app.deps, apiClientId, { template: 'reminder', state: { status: 'failed', attempts: 1 } });
    const existing = await app.deps.apiClients.create(`csrf-kept-${randomUUID().slice(0, 8)}`);
    const made = `csrf-made-${randomUUID().slice(0, 8)}`;
    const granted = staffEmail('csrf-granted');
    const bodies: Record<string, Record<string, string>> = {
      '/admin/optouts/retry': { scope: 'selected', id: row.id, confirmed: 'yes' },
      '/admin/whatsapp/queued/retry': { id: send.id, confirmed: 'yes' },
      '/admin/api-clients': { name: made },
      '/admin/api-clients/revoke': { name: existing.name },
      '/admin/flows': { name: made },
      '/admin/staff/grant': { email: granted, role: 'admin' },
    };
    const targets: Array<[string, string]> = [
      ['/admin/staff/', member.id],
      ['/admin/whatsapp/', send.id],
      ['/admin/optouts/', row.id],
    ];
    const forms = FORMS.map((path) => path.replace(SOME_ID, targets.find(([prefix]) => path.startsWith(prefix))?.[1] ?? SOME_ID));
    for (const path of forms) {
      const response = await agent.post(path).type('form').send({ reason: 'duplicate', role: 'admin', ...bodies[path] });
      expect([path, response.status]).toEqual([path, 403]);
      expect(response.text).toMatch(/This form has expired or did not come from these pages/);
    }
    expect((await app.deps.optoutStore.findById(row.id))?.status).toBe('queued');
    expect(await app.deps.db.apiClient.count({ where: { name: made } })).toBe(0);
    expect(await app.deps.db.apiClient.findUnique({ where: { id: existing.id } })).toMatchObject({ revokedAt: null });
    expect(await app.deps.db.staffMember.findUnique({ where: { email: granted } })).toBeNull();
    expect(await app.deps.db.staffMember.findUnique({ where: { id: member.id } })).toMatchObject({ role: 'viewer', removedAt: null });
    expect(await app.deps.templateSendStore.findById(send.id)).toMatchObject({ status: 'failed', cancelReason: null });
    expect(await app.deps.db.auditEvent.count({ where: { target: { in: [row.id, send.id, member.id, existing.id] } } })).toBe(0);
  });

  it('lets an operator retry and cancel, and answers their admin pages and forms with 403', async () => {
    const email = staffEmail('operator');
    await app.deps.staff.grant(email, 'operator');
    const { agent } = await signIn(app, google, domainAccount(email));
    const token = csrfTokenIn((await agent.get('/admin/optouts')).text);
    // Past the role check to the opt-out itself, which does not exist.
    expect((await agent.post(`/admin/optouts/${SOME_ID}/retry`).type('form').send({ _csrf: token })).status).toBe(404);
    expect((await agent.post(`/admin/optouts/${SOME_ID}/cancel`).type('form').send({ reason: 'duplicate', _csrf: token })).status).toBe(404);
    for (const page of ['/admin/api-clients', '/admin/staff']) {
      const refused = await agent.get(page);
      expect(refused.status).toBe(403);
      expect(refused.text).toMatch(/This needs the admin role, and you are an operator/);
    }
    expect((await agent.post('/admin/api-clients').type('form').send({ _csrf: token, name: 'operator-made' })).status).toBe(403);
    expect(await app.deps.db.apiClient.count({ where: { name: 'operator-made' } })).toBe(0);
  });

  it('answers a form without its CSRF token (or with a wrong one) with 403', async () => {
    const email = staffEmail('operator');
    await app.deps.staff.grant(email, 'operator');
    const { agent } = await signIn(app, google, domainAccount(email));
    const without = await agent.post(`/admin/optouts/${SOME_ID}/cancel`).type('form').send({ reason: 'duplicate' });
    expect(without.status).toBe(403);
    expect(without.text).toMatch(/This form has expired or did not come from these pages/);
    const wrong = await agent.post(`/admin/optouts/${SOME_ID}/cancel`).type('form').send({ reason: 'duplicate', _csrf: 'a'.repeat(256) });
    expect(wrong.status).toBe(403);
    expect((await agent.post('/auth/logout').type('form').send({})).status).toBe(403);
    // With the token the same form gets through to the opt-out (which does not exist).
    const token = csrfTokenIn((await agent.get('/admin')).text);
    expect((await agent.post(`/admin/optouts/${SOME_ID}/cancel`).type('form').send({ reason: 'duplicate', _csrf: token })).status).toBe(404);
  });

  it('applies a role change or a removal at the next request', async () => {
    const email = staffEmail('changing');
    const { agent } = await signIn(app, google, domainAccount(email));
    const member = (await app.deps.db.staffMember.findUnique({ where: { email } }))!;
    await app.deps.db.staffMember.update({ where: { id: member.id }, data: { role: 'admin' } });
    expect((await agent.get('/admin/staff')).status).toBe(200);
    await app.deps.db.staffMember.update({ where: { id: member.id }, data: { removedAt: new Date() } });
    const after = await agent.get('/admin');
    expect(after.status).toBe(302);
    const again = await signIn(app, google, domainAccount(email));
    expect(again.response.status).toBe(403);
    expect(again.response.text).toMatch(/An administrator removed/);
  });

  it('refuses an address that now belongs to another Google account, until an admin gives it a role again', async () => {
    const email = staffEmail('reused');
    expect((await signIn(app, google, { ...domainAccount(email), sub: 'first-account' })).response.status).toBe(302);
    // The Workspace gave the address to someone else: another account, the same address.
    const other = await signIn(app, google, { ...domainAccount(email), sub: 'second-account' });
    expect(other.response.status).toBe(403);
    expect(other.response.text).toMatch(/was given its role when it belonged to another Google account/);
    expect((await signIn(app, google, { ...domainAccount(email), sub: 'first-account' })).response.status).toBe(302);

    await app.deps.staff.grant(email, 'viewer');
    expect((await signIn(app, google, { ...domainAccount(email), sub: 'second-account' })).response.status).toBe(302);
    expect((await signIn(app, google, { ...domainAccount(email), sub: 'first-account' })).response.status).toBe(403);

    // ADMIN_EMAILS names the address itself, whichever account holds it.
    const boss = { email: CONFIGURED_ADMIN, email_verified: true };
    expect((await signIn(app, google, { ...boss, sub: 'boss-first' })).response.status).toBe(302);
    expect((await signIn(app, google, { ...boss, sub: 'boss-second' })).response.status).toBe(302);
  });

  it('ends a signed-in session a day after signing in, however busy it was', async () => {
    const { agent, response } = await signIn(app, google, domainAccount());
    expect((await agent.get('/admin')).status).toBe(200);
    const cookie = sessionCookie(response.headers['set-cookie'])!;
    const sid = /^s:([^.]+)\./.exec(decodeURIComponent(cookie.split(';')[0]!.split('=')[1]!))![1]!;
    const dayAgo = Date.now() - 24 * 60 * 60 * 1000 - 1000;
    await app.deps.db.$executeRaw`UPDATE staff_sessions SET sess = jsonb_set(sess::jsonb, '{signedInAt}', to_jsonb(${dayAgo}::bigint))::json WHERE sid = ${sid}`;
    const after = await agent.get('/admin/optouts');
    expect([after.status, after.headers.location]).toEqual([302, '/auth/google']);
    expect((await agent.get('/admin')).status).toBe(302);
  });

  it('signs out with the form, and the old session is gone', async () => {
    const email = staffEmail('leaving');
    const { agent } = await signIn(app, google, domainAccount(email));
    const token = csrfTokenIn((await agent.get('/admin')).text);
    const out = await agent.post('/auth/logout').type('form').send({ _csrf: token });
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/auth/signed-out');
    expect((await agent.get('/auth/signed-out')).text).toMatch(/You are signed out/);
    expect((await agent.get('/admin')).status).toBe(302);
    expect(await app.deps.db.auditEvent.findFirst({ where: { actor: email, action: 'sign_out' } })).not.toBeNull();
  });

  it('sends security headers, a strict content security policy and no-store on every page', async () => {
    const { agent } = await signIn(app, google, domainAccount());
    const page = await agent.get('/admin');
    expect(page.headers['content-security-policy']).toBe(
      "default-src 'none';style-src 'self';img-src 'self';form-action 'self';frame-ancestors 'none';base-uri 'none'",
    );
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).not.toMatch(/<script|\sstyle=|\son[a-z]+=/i);
    const css = await app.http.get('/admin/static/admin.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/text\/css/);
  });
});

describe('staff sign-in settings', () => {
  it('uses PUBLIC_URL for the callback, hints the domain, and marks cookies Secure behind TLS', async () => {
    const google = await new FakeGoogle().start();
    // TLS ends at the one proxy in front, which says so in X-Forwarded-Proto.
    const env = signInEnv(google, { TRUST_PROXY: '1', PUBLIC_URL: 'https://companion.example.org/', ADMIN_EMAILS: `chief@${STAFF_DOMAIN}` });
    const app = await startTestApp({ env });
    try {
      const response = await app.http.get('/admin').set('X-Forwarded-Proto', 'https');
      expect(sessionCookie(response.headers['set-cookie'])).toMatch(/; Secure/);
      const start = await app.http.get('/auth/google').set('X-Forwarded-Proto', 'https');
      const params = new URL(start.headers.location!).searchParams;
      expect(params.get('redirect_uri')).toBe('https://companion.example.org/auth/google/callback');
      expect(params.get('hd')).toBe(STAFF_DOMAIN);
      expect(start.headers['strict-transport-security']).toMatch(/max-age=/);
      expect(start.headers['content-security-policy']).toMatch(/upgrade-insecure-requests/);
    } finally {
      await app.stop();
      await google.stop();
    }
  });

  it('answers an address that keeps coming without signing in with 429, and a signed-in member as usual', async () => {
    const google = await new FakeGoogle().start();
    const app = await startTestApp({ env: signInEnv(google) });
    try {
      const { agent } = await signIn(app, google, domainAccount());
      const answers: number[] = [];
      for (let request = 0; request < 201; request += 1) answers.push((await app.http.get('/admin')).status);
      expect(answers.filter((status) => status === 302)).toHaveLength(200 - 2); // signing in made two
      const refused = await app.http.get('/auth/google');
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      expect(refused.text).toMatch(/Too many requests without signing in/);
      expect((await agent.get('/admin')).status).toBe(200);
    } finally {
      await app.stop();
      await google.stop();
    }
  });

  it('says sign-in is not configured (in development) rather than failing', async () => {
    const app = await startTestApp({ env: { NODE_ENV: 'development', SESSION_SECRET: undefined } });
    try {
      for (const path of ['/admin', '/admin/optouts', '/auth/google']) {
        const response = await app.http.get(path);
        expect(response.status).toBe(503);
        expect(response.text).toMatch(/Sign-in is not configured/);
        expect(response.text).toMatch(/GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, SESSION_SECRET, ADMIN_GOOGLE_DOMAINS \(or ADMIN_EMAILS\)/);
      }
      expect((await app.http.get('/healthz')).status).toBe(200);
    } finally {
      await app.stop();
    }
  });
});
