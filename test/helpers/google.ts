import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { Events, OAuth2Server } from 'oauth2-mock-server';
import supertest from 'supertest';
import type { TestApp } from './app';
import { APP_SECRETS } from './env';

/** What Google's userinfo endpoint answers about the account that signs in. */
export interface GoogleAccount {
  email?: string;
  email_verified?: boolean;
  hd?: string;
  name?: string;
  /** The account's own id; unless given, one per address, as when the same person signs in again. */
  sub?: string;
}

/**
 * A local OAuth 2.0 server standing in for Google (oauth2-mock-server): it signs anyone in and
 * answers userinfo with the account given to `nextAccount`.
 */
export class FakeGoogle {
  private readonly server = new OAuth2Server();
  private account: GoogleAccount = {};

  async start(): Promise<this> {
    // keys.generate() refuses the key that WebCrypto exports under Jest (an object of another realm).
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await this.server.issuer.keys.add({ ...privateKey.export({ format: 'jwk' }), alg: 'RS256' });
    await this.server.start(0, '127.0.0.1');
    this.server.service.on(Events.BeforeUserinfo, (response: { body: Record<string, unknown> }) => {
      const sub = this.account.email ? createHash('sha256').update(this.account.email.toLowerCase()).digest('hex').slice(0, 21) : randomUUID();
      response.body = { sub, ...this.account };
    });
    return this;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  get url(): string {
    return this.server.issuer.url!;
  }

  /** GOOGLE_*_URL for an app that signs in here. */
  get env(): Record<string, string> {
    return {
      GOOGLE_AUTHORIZATION_URL: `${this.url}/authorize`,
      GOOGLE_TOKEN_URL: `${this.url}/token`,
      GOOGLE_USERINFO_URL: `${this.url}/userinfo`,
    };
  }

  nextAccount(account: GoogleAccount): void {
    this.account = account;
  }
}

export const STAFF_DOMAIN = 'programme.example.org';
export const CONFIGURED_ADMIN = 'boss.person@gmail.com';

/** The sign-in settings of a test app that signs in through `google`. */
export function signInEnv(google: FakeGoogle, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    GOOGLE_CLIENT_ID: 'companion-test.apps.googleusercontent.com',
    GOOGLE_CLIENT_SECRET: APP_SECRETS.googleClientSecret,
    SESSION_SECRET: APP_SECRETS.sessionSecret,
    ADMIN_GOOGLE_DOMAINS: STAFF_DOMAIN,
    ADMIN_EMAILS: CONFIGURED_ADMIN,
    ...google.env,
    ...overrides,
  };
}

/** A fresh address in the staff domain, so that test files never share a staff member. */
export function staffEmail(label = 'staff'): string {
  return `${label}-${randomUUID().slice(0, 8)}@${STAFF_DOMAIN}`;
}

export function domainAccount(email = staffEmail()): GoogleAccount {
  return { email, email_verified: true, hd: STAFF_DOMAIN, name: 'Test Person' };
}

/**
 * Goes through the whole sign-in as a browser would, over real HTTP: /auth/google, Google's
 * authorize page (which signs `account` in at once), and the callback. Returns the cookie-keeping
 * agent and the callback's answer.
 */
export async function signIn(app: TestApp, google: FakeGoogle, account: GoogleAccount) {
  const agent = supertest.agent(app.baseUrl);
  google.nextAccount(account);
  const start = await agent.get('/auth/google');
  if (start.status !== 302) throw new Error(`/auth/google answered ${start.status}`);
  const authorize = await fetch(start.headers.location!, { redirect: 'manual' });
  const callback = new URL(authorize.headers.get('location')!);
  const response = await agent.get(`${callback.pathname}${callback.search}`);
  return { agent, response };
}

/** The CSRF token of the forms on a page. */
export function csrfTokenIn(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF field on the page');
  return match[1]!;
}

/** A signed-in staff member of each role: a viewer and an operator of the domain (their addresses in `emails`), and the ADMIN_EMAILS admin. */
export async function signInEachRole(app: TestApp, google: FakeGoogle) {
  const emails = { viewer: staffEmail('viewer'), operator: staffEmail('operator') };
  const viewer = (await signIn(app, google, domainAccount(emails.viewer))).agent;
  await app.deps.staff.grant(emails.operator, 'operator');
  const operator = (await signIn(app, google, domainAccount(emails.operator))).agent;
  const admin = (await signIn(app, google, { email: CONFIGURED_ADMIN, email_verified: true })).agent;
  return { viewer, operator, admin, emails };
}
