import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { findLeaks } from '../helpers/logs';
import { PARTNER_SECRETS } from '../helpers/fake-partner';
import { WEBHOOK_ROUTES } from '../helpers/routes';

const LIMIT = 3;
let app: TestApp;
/** An active client's token whose key id holds a letter, so that its upper-case near miss differs from it. */
let lettered: string;

beforeAll(async () => {
  // A long window: where only counting matters, no failures may age out of it on a slow machine.
  // One proxy in front, as behind a load balancer: X-Forwarded-For then tells the tests' clients apart.
  app = await startTestApp({ env: { TRUST_PROXY: '1', AUTH_FAILURE_LIMIT: String(LIMIT), AUTH_FAILURE_WINDOW_MS: '60000' } });
  do lettered = (await app.deps.apiClients.create(`near-miss-${randomUUID()}`)).token;
  while (!/^cmp_[0-9a-f]*[a-f]/.test(lettered));
});
afterAll(() => app.stop());

/** A client address of its own for each test. */
let addresses = 0;
const newAddress = () => `198.51.100.${(addresses += 1)}`;
let address = newAddress();
beforeEach(() => {
  address = newAddress();
});

const post = (route: string, authorization: string | undefined, from = address, body: object = optoutWebhook()) => {
  const request = app.http.post(route).set('X-Forwarded-For', from).send(body);
  return authorization === undefined ? request : request.set('Authorization', authorization);
};

/** Tokens that look right and are not. */
function nearMisses(token: string): Array<[string, string]> {
  const [, keyId, secret] = /^cmp_([0-9a-f]{16})_(.+)$/.exec(token)!;
  const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
  const otherHex = (text: string) => (text[0] === '0' ? '1' : '0') + text.slice(1);
  return [
    ['the secret changed in its last character', `Token cmp_${keyId}_${flip(secret!, secret!.length - 1)}`],
    ['the secret changed in its first character', `Token cmp_${keyId}_${flip(secret!, 0)}`],
    ['another key id with the right secret', `Token cmp_${otherHex(keyId!)}_${secret}`],
    ['the secret one character short', `Token cmp_${keyId}_${secret!.slice(0, -1)}`],
    ['the secret one character long', `Token ${token}A`],
    ['the key id in upper case', `Token cmp_${keyId!.toUpperCase()}_${secret}`],
    ['the Bearer scheme', `Bearer ${token}`],
    ['no scheme', token],
    ['two tokens', `Token ${token} ${token}`],
  ];
}

describe.each(WEBHOOK_ROUTES)('POST %s refuses every token that is not an active client\'s', (route) => {
  it('refuses a missing header, an unknown token and a malformed one with 401', async () => {
    const unknown = `Token cmp_${'0123456789abcdef'}_${'A'.repeat(43)}`;
    for (const authorization of [undefined, unknown, 'Token nonsense', 'Token ', '']) {
      const response = await post(route, authorization, newAddress());
      expect([authorization, response.status, response.body]).toEqual([authorization, 401, { error: 'unauthorized' }]);
    }
  });

  it.each(nearMisses('cmp_0123456789abcdef_' + 'x'.repeat(43)).map(([name]) => name))('refuses a near miss: %s', async (name) => {
    const [, authorization] = nearMisses(lettered).find(([candidate]) => candidate === name)!;
    expect(authorization).not.toBe(`Token ${lettered}`);
    expect((await post(route, `Token ${lettered}`, newAddress())).status).not.toBe(401); // the token itself is let in
    const response = await post(route, authorization, newAddress());
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: 'unauthorized' });
  });

  it('refuses the token of a revoked client', async () => {
    const client = await app.deps.apiClients.create(`revoked-${randomUUID()}`);
    expect((await post(route, `Token ${client.token}`)).status).not.toBe(401); // let in (whatever the route makes of the body)
    await app.deps.apiClients.revoke(client.name);
    const response = await post(route, `Token ${client.token}`);
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: 'unauthorized' });
  });
});

describe('repeated failed authentications from one address', () => {
  const route = WEBHOOK_ROUTES[0]!;
  const bad = `Token cmp_fedcba9876543210_${'B'.repeat(43)}`;

  it(`answer 429 with Retry-After once ${LIMIT} have failed within the window`, async () => {
    for (let index = 0; index < LIMIT; index += 1) expect((await post(route, bad)).status).toBe(401);
    const refused = await post(route, bad);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ error: 'too many failed authentications' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    // Other addresses are not affected.
    expect((await post(route, bad, newAddress())).status).toBe(401);
  });

  it('let an address in again once the window ends', async () => {
    const windowMs = 2000;
    const short = await startTestApp({ env: { TRUST_PROXY: '1', AUTH_FAILURE_LIMIT: String(LIMIT), AUTH_FAILURE_WINDOW_MS: String(windowMs) }, createToken: false });
    try {
      const postShort = () => short.http.post(route).set('X-Forwarded-For', address).set('Authorization', bad).send(optoutWebhook());
      for (let index = 0; index < LIMIT; index += 1) expect((await postShort()).status).toBe(401);
      const refused = await postShort();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(windowMs / 1000);
      await sleep(windowMs + 100);
      expect((await postShort()).status).toBe(401);
    } finally {
      await short.stop();
    }
  });

  it('never count or refuse requests with a valid token, even from an address that is refused', async () => {
    for (let index = 0; index < LIMIT - 1; index += 1) expect((await post(route, bad)).status).toBe(401);
    const valid = await Promise.all(Array.from({ length: 20 }, () => post(route, `Token ${app.token}`)));
    expect(valid.map((response) => response.status)).toEqual(Array(20).fill(202));
    expect((await post(route, bad)).status).toBe(401); // the limit-th failure: valid requests did not count
    expect((await post(route, bad)).status).toBe(429);
    expect((await post(route, `Token ${app.token}`)).status).toBe(202);
  });

  it('count a request whose token is missing or malformed too', async () => {
    for (let index = 0; index < LIMIT; index += 1) expect((await post(route, undefined)).status).toBe(401);
    expect((await post(route, 'Token nonsense')).status).toBe(429);
  });
});

describe('failed authentications with no proxy in front (TRUST_PROXY=0)', () => {
  let direct: TestApp;
  beforeAll(async () => {
    direct = await startTestApp({ env: { TRUST_PROXY: '0', AUTH_FAILURE_LIMIT: String(LIMIT), AUTH_FAILURE_WINDOW_MS: '60000' } });
  });
  afterAll(() => direct.stop());

  it('count by the connection, whatever X-Forwarded-For a client makes up', async () => {
    const bad = `Token cmp_fedcba9876543210_${'C'.repeat(43)}`;
    const statuses: number[] = [];
    for (let index = 0; index <= LIMIT; index += 1) {
      statuses.push((await direct.http.post(WEBHOOK_ROUTES[0]!).set('X-Forwarded-For', newAddress()).set('Authorization', bad).send({})).status);
    }
    expect(statuses).toEqual([...Array<number>(LIMIT).fill(401), 429]);
  });
});

describe('the logs', () => {
  it('hold no token, secret or full phone number after tokens good and bad, and opt-outs with numbers', async () => {
    const client = await app.deps.apiClients.create(`logs-${randomUUID()}`);
    const body = optoutWebhook({ urn: 'tel:+27820001004', fields: { facility_code: '123456', registered_by: '+27820001005' } });
    expect((await post(WEBHOOK_ROUTES[0]!, `Token ${client.token}`, newAddress(), body)).status).toBe(202);
    for (const [, authorization] of nearMisses(client.token)) await post(WEBHOOK_ROUTES[0]!, authorization, newAddress());
    await app.deps.apiClients.revoke(client.name);
    await post(WEBHOOK_ROUTES[0]!, `Token ${client.token}`, newAddress());

    const logs = app.logs.join('');
    expect(logs).toMatch(/"status":401/); // the requests were logged...
    expect(findLeaks(logs, [client.token.slice(-43)])).toEqual([]); // ...without what they carried
  });

  it("name the API client in a request's line, and no client when the token was not good", async () => {
    const client = await app.deps.apiClients.create(`named-${randomUUID()}`);
    const lineOf = async (authorization: string) => {
      const requestId = randomUUID();
      const response = await post(WEBHOOK_ROUTES[0]!, authorization, newAddress()).set('X-Request-Id', requestId);
      const lines = app.logs.join('').split('\n').filter((line) => line.includes(requestId) && line.includes('"responseTime"'));
      expect(lines).toHaveLength(1);
      return { status: response.status, line: JSON.parse(lines[0]!) as { apiClient?: string; req: { id: string }; res: { status: number } } };
    };

    const accepted = await lineOf(`Token ${client.token}`);
    expect([accepted.status, accepted.line.res.status, accepted.line.apiClient]).toEqual([202, 202, client.name]);
    const refused = await lineOf(`Token cmp_${'0123456789abcdef'}_${'A'.repeat(43)}`);
    expect([refused.status, refused.line.res.status, 'apiClient' in refused.line]).toEqual([401, 401, false]);
  });

  it('are checked by a scanner that does find each kind of leak', () => {
    const token = `cmp_0123456789abcdef_${'Q'.repeat(43)}`;
    const line = (fields: object) => `${JSON.stringify({ level: 'info', time: '2026-11-27T10:15:00.000Z', ...fields })}\n`;
    expect(findLeaks(line({ msg: `got ${token}` }))).toEqual([expect.stringMatching(/^an API token/)]);
    expect(findLeaks(line({ msisdn: '+27820001001' }))).toEqual([expect.stringMatching(/^a full phone number/)]);
    expect(findLeaks(line({ id: '27820001001^^^ZAF^TEL' }))).toEqual([expect.stringMatching(/^a full phone number/)]);
    expect(findLeaks(line({ msg: `password is ${PARTNER_SECRETS.openhimPassword}` }))).toEqual([expect.stringMatching(/^a secret/)]);
    expect(findLeaks(line({ headers: { authorization: 'Basic abc' } }))).toEqual([expect.stringMatching(/^a credential field/)]);
    expect(findLeaks(line({ messageId: 'wamid.HBgLMjc4MjAwMDEwMDEVAgARGBI5QTND' }))).toEqual([expect.stringMatching(/^a WhatsApp message id/)]);
    expect(findLeaks(line({ msg: 'kept', secret: 'x' }), ['kept'])).toHaveLength(2);
    // What logs do hold: masked numbers, ids, times, redacted fields.
    const clean = line({
      msisdn: '+2782*****01',
      optoutId: randomUUID(),
      jobId: `optout-${randomUUID()}`,
      req: { id: randomUUID(), path: '/api/v1/optouts' },
      authorization: '[redacted]',
      ms: 123456,
      responseTime: 12,
    });
    expect(findLeaks(clean)).toEqual([]);
  });
});
