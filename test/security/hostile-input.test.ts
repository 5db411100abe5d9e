import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { createScratchDatabase } from '../helpers/env';
import { startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { openhimPartnerEnv, PARTNER_SECRETS } from '../helpers/fake-partner';
import { rawPost } from '../helpers/raw-http';
import { WEBHOOK_ROUTES } from '../helpers/routes';

/**
 * Every /api webhook route (test/helpers/routes.ts), fed what a broken or hostile caller might send.
 * Whatever arrives, the answer is never a 5xx; a refused request is a 4xx with a JSON `error` and
 * leaves nothing behind (no row in any table, no job, no call to a partner).
 */

let app: TestApp;
let partner: FakePartner;
let database: { url: string; drop(): Promise<void> };
let pool: pg.Pool;
let countRows: string;

beforeAll(async () => {
  database = await createScratchDatabase('hostile');
  partner = await startFakePartner();
  // Any partner call answers as an upstream that accepted it: a request the companion let through is not refused later.
  partner.on('*', {
    status: 200,
    body: { messaging_product: 'whatsapp', contacts: [{ input: 'x', wa_id: 'x' }], messages: [{ id: 'wamid.fake' }] },
  });
  app = await startTestApp({
    env: {
      DATABASE_URL: database.url,
      ...openhimPartnerEnv(partner),
      WHATSAPP_URL: partner.url,
      WHATSAPP_TOKEN: PARTNER_SECRETS.whatsappToken,
      WHATSAPP_PHONE_NUMBER_ID: '109876',
    },
  });
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const tables = await pool.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'");
  countRows = `SELECT ${tables.rows.map(({ tablename }) => `(SELECT count(*) FROM "${tablename}")`).join(' + ')} AS rows`;
});
afterAll(async () => {
  await pool?.end();
  await app?.stop();
  await partner?.stop();
  await database?.drop();
});

/** Everything a request could leave behind. */
async function traces(): Promise<{ rows: number; jobs: number; partnerCalls: number }> {
  const [{ rows }] = (await pool.query<{ rows: string }>(countRows)).rows as [{ rows: string }];
  const jobs = Object.values(await app.deps.optoutQueue.bullQueue.getJobCounts()).reduce((sum, count) => sum + count, 0);
  return { rows: Number(rows), jobs, partnerCalls: partner.requests.length };
}

interface HostileRequest {
  route: string;
  query: string;
  body: string | Buffer;
  contentType: string | undefined;
  headers: Record<string, string>;
}

/** Sends one request and checks the properties; with `mustRefuse`, a 2xx is a failure too. */
async function sendAndCheck(request: HostileRequest, mustRefuse = false): Promise<void> {
  const before = await traces();
  const headers: Record<string, string> = { authorization: `Token ${app.token}`, ...request.headers };
  if (request.contentType !== undefined) headers['content-type'] = request.contentType;
  const answer = await rawPost(`${app.baseUrl}${request.route}${request.query}`, request.body, headers);
  const what = `${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
  if (answer.status >= 500 || answer.status < 200) throw new Error(`answered ${what}`);
  if (mustRefuse && answer.status < 400) throw new Error(`accepted what it must refuse: ${what}`);
  if (answer.status >= 300) {
    if (answer.status >= 500 || typeof (answer.body as { error?: unknown })?.error !== 'string') throw new Error(`refused without a JSON error: ${what}`);
    const after = await traces();
    if (JSON.stringify(after) !== JSON.stringify(before)) {
      throw new Error(`refused (${what}) yet left traces: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
    }
  }
}

// --- What a hostile caller sends ----------------------------------------------------------------

const query = fc.oneof(fc.constant(''), fc.webQueryParameters().map((text) => `?${text}`));
/** Content types the webhook reads as JSON (RapidPro may send none)... */
const JSON_TYPES = [undefined, '', 'application/json', 'application/json; charset=utf-8', 'application/json; charset=', 'application/vnd.rapidpro+json'];
const contentType = fc.constantFrom(
  ...JSON_TYPES,
  // ...and these are not:
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'text/plain',
  'text/html; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'json',
  ';;;',
);
const jsonContentType = fc.constantFrom(undefined, 'application/json', 'application/json; charset=utf-8');

/** Text with a NUL or an unpaired surrogate somewhere: valid JSON, but PostgreSQL cannot store it. */
const unstorableString = fc
  .tuple(fc.string({ maxLength: 8 }), fc.constantFrom('\u0000', '\ud800', '\udfff', '\ud83d'), fc.string({ maxLength: 8 }))
  .map(([before, bad, after]) => before + bad + after);

/** Strings PostgreSQL cannot store, or that are too long, or that mean something to JavaScript. */
const hostileString = fc.oneof(
  { arbitrary: unstorableString, weight: 3 },
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', '', ' ', '💥'.repeat(400)),
  fc.integer({ min: 600, max: 20_000 }).map((length) => 'x'.repeat(length)),
);

function nested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Any JSON at all, as text, with keys that reach prototypes and nesting far past what RapidPro sends. */
const hostileJsonText = fc.oneof(
  fc.jsonValue({ stringUnit: 'binary' }).map((value) => JSON.stringify(value)),
  fc.jsonValue({ maxDepth: 3 }).map((value) => `{"__proto__": ${JSON.stringify(value)}, "contact": {"uuid": "${randomUUID()}"}}`),
  fc.jsonValue({ maxDepth: 3 }).map((value) => `{"contact": {"uuid": "${randomUUID()}", "constructor": ${JSON.stringify(value)}, "fields": {"__proto__": {"polluted": true}}}}`),
  fc.tuple(fc.integer({ min: 10, max: 40_000 }), fc.constantFrom('array' as const, 'object' as const)).map(([depth, kind]) => nested(depth, kind)),
  fc.constantFrom('null', 'true', '0', '""', '[]', '{}', '"{}"', '1e400', '-0', '{"contact": null}', '{"contact": []}', '{"contact": "x"}'),
);

/** A value to put where the webhook expects something else. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileString, weight: 4 },
  fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(hostileString, { maxLength: 5 }),
  fc.integer({ min: 50, max: 2000 }).map((depth) => JSON.parse(nested(depth, 'object')) as unknown),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'uuid', 'value', 'facility_code'), fc.jsonValue({ maxDepth: 2 })),
);

const WEBHOOK_PATHS = [
  'contact',
  'contact.uuid',
  'contact.name',
  'contact.urn',
  'contact.fields',
  'contact.fields.facility_code',
  'contact.fields.__proto__',
  'contact.__proto__',
  'flow',
  'flow.uuid',
  'flow.name',
  'results',
  'results.optout_reason',
  'results.optout_reason.value',
  'results.optout_reason.category',
  'run',
  'run.uuid',
  '__proto__',
  'constructor',
  'template',
  'to',
];

/** Sets `path` in `target` as an own property, even for "__proto__", creating objects on the way. */
function setOwn(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node: Record<string, unknown> = target;
  for (const key of keys.slice(0, -1)) {
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (!next || typeof next !== 'object') Object.defineProperty(node, key, { value: {}, enumerable: true, writable: true, configurable: true });
    node = node[key] as Record<string, unknown>;
  }
  Object.defineProperty(node, keys.at(-1)!, { value, enumerable: true, writable: true, configurable: true });
}

/** RapidPro's webhook body with one to three parts replaced by something hostile. */
const mutatedWebhook = fc
  .tuple(fc.array(fc.tuple(fc.constantFrom(...WEBHOOK_PATHS), hostileValue), { minLength: 1, maxLength: 3 }), fc.constantFrom('whatsapp:27820001001', 'tel:+27820001002'))
  .map(([changes, urn]) => {
    const body = JSON.parse(JSON.stringify(optoutWebhook({ urn, fields: { facility_code: '123456' } }))) as Record<string, unknown>;
    for (const [path, value] of changes) setOwn(body, path, value);
    return JSON.stringify(body);
  });

/** A valid webhook whose text carries bytes that are not UTF-8 (a lone continuation byte, an encoded surrogate...). */
const invalidUtf8Webhook = fc
  .tuple(fc.constantFrom([0xff], [0xc3], [0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]), fc.nat({ max: 3 }))
  .map(([bytes, where]) => {
    const text = JSON.stringify(optoutWebhook());
    const anchors = ['"Jane', '"job change', '"NurseConnect', '"whatsapp:'];
    const at = text.indexOf(anchors[where]!) + 1;
    return Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bytes), Buffer.from(text.slice(at))]);
  });

const headers = fc.record(
  {
    'idempotency-key': fc.oneof(fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 400 }).map((key) => key.replace(/[^\x21-\x7e]/g, 'x')), fc.constant(' ')),
    'x-mailroom-mode': fc.constantFrom('simulation', 'live', ''),
  },
  { requiredKeys: [] },
);

// --- The properties -------------------------------------------------------------------------------

const RUNS = { interruptAfterTimeLimit: 20_000 };

describe.each(WEBHOOK_ROUTES)('POST %s against hostile input', (path) => {
  const at = fc.constant(path);

  it('answers any JSON document, of any shape or depth, with a 2xx or a clean 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(at, query, hostileJsonText, jsonContentType, async (route, query, body, contentType) =>
        sendAndCheck({ route, query, body, contentType, headers: {} }),
      ),
      { numRuns: 120, ...RUNS },
    );
  });

  it('answers a webhook with wrong types, huge or unstorable strings and prototype keys with a 2xx or a clean 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(at, mutatedWebhook, jsonContentType, headers, async (route, body, contentType, extra) =>
        sendAndCheck({ route, query: '', body, contentType, headers: extra }),
      ),
      { numRuns: 250, ...RUNS },
    );
  });

  it('refuses bytes that are not UTF-8 JSON, and bodies of other content types', async () => {
    await fc.assert(
      fc.asyncProperty(
        at,
        fc.oneof(fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes)), invalidUtf8Webhook),
        contentType,
        async (route, body, type) => sendAndCheck({ route, query: '', body, contentType: type, headers: {} }, true),
      ),
      { numRuns: 120, ...RUNS },
    );
  });

  it('refuses a valid webhook sent with a content type that is not JSON, and reads it without one', async () => {
    await fc.assert(
      fc.asyncProperty(at, contentType, async (route, type) => {
        const body = JSON.stringify(optoutWebhook());
        await sendAndCheck({ route, query: '', body, contentType: type, headers: {} }, !JSON_TYPES.includes(type));
      }),
      { numRuns: 40, ...RUNS },
    );
  });

  it('answers 413 for bodies around and over 256 KiB, and stores none of the larger ones', async () => {
    await fc.assert(
      fc.asyncProperty(at, fc.integer({ min: 250 * 1024, max: 320 * 1024 }), async (route, size) => {
        const body = JSON.stringify({ ...optoutWebhook(), padding: 'x'.repeat(size) });
        await sendAndCheck({ route, query: '', body, contentType: 'application/json', headers: {} }, size > 256 * 1024);
      }),
      { numRuns: 8, ...RUNS },
    );
  });
});

describe('the checks themselves', () => {
  it('count the row a request leaves behind', async () => {
    const before = await traces();
    await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(optoutWebhook());
    expect((await traces()).rows).toBe(before.rows + 1);
  });

  it('pin the answers the contract names for malformed, foreign and unstorable bodies', async () => {
    const post = (body: string | Buffer, type?: string) =>
      rawPost(`${app.baseUrl}/api/v1/optouts`, body, { authorization: `Token ${app.token}`, ...(type ? { 'content-type': type } : {}) });
    expect(await post('{"contact":')).toMatchObject({ status: 400, body: { error: 'invalid JSON' } });
    expect(await post(Buffer.from([0x7b, 0xff, 0x7d]))).toMatchObject({ status: 400, body: { error: 'invalid JSON' } });
    expect(await post('{}', 'text/plain')).toMatchObject({ status: 415, body: { error: 'content type must be application/json' } });
    expect(await post('{}', 'application/json; charset=latin1')).toMatchObject({ status: 415, body: { error: 'unsupported charset' } });
    const withNul = { ...optoutWebhook(), results: { optout_reason: { value: 'a\u0000b', category: 'other' } } };
    expect(await post(JSON.stringify(withNul))).toMatchObject({
      status: 400,
      body: { error: 'invalid request', details: [{ path: 'results.optout_reason.value', message: expect.stringMatching(/NUL/) }] },
    });
    const nestedFields = optoutWebhook({ fields: { facility_code: { deeper: ['x'] } } });
    expect(await post(JSON.stringify(nestedFields))).toMatchObject({ status: 400, body: { details: [{ path: 'contact.fields.facility_code' }] } });
    expect(await post(nested(30_000, 'array'))).toMatchObject({ status: 400, body: { error: 'invalid request' } });
  });

  it('keep prototype keys out of what is stored', async () => {
    const uuid = randomUUID();
    const body = `{"contact": {"uuid": "${uuid}", "urn": "tel:+27820001003", "fields": {"__proto__": {"polluted": "yes"}, "constructor": "x", "facility_code": "123456"}}}`;
    const answer = await rawPost(`${app.baseUrl}/api/v1/optouts`, body, { authorization: `Token ${app.token}` });
    expect(answer.status).toBe(202);
    const row = await app.deps.db.optout.findFirst({ where: { contactUuid: uuid } });
    expect(row?.contactFields).toEqual({ facility_code: '123456' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
