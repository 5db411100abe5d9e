import { randomUUID } from 'node:crypto';
import { eventually, optoutWebhook, settledOptout, startTestApp, type TestApp } from '../helpers/app';
import { JEMBI_OPTOUT_ACCEPTED, OPENHIM_ROUTE, openhimPartnerEnv, startFakePartner, type FakeAnswer, type FakePartner } from '../helpers/fake-partner';

/**
 * The opt-out API attacked by its own callers: API clients sharing or guessing each other's
 * Idempotency-Keys and opt-out ids, and an OpenHIM that answers 2xx with something that is not Jembi's.
 */

const KEY_REUSED = { error: 'Idempotency-Key already used for another request' };

describe('Idempotency-Keys belong to one API client and one contact', () => {
  let app: TestApp;
  // A second web process on the same database, as behind a load balancer: racing requests meet in PostgreSQL.
  let other: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    other = await startTestApp();
  });
  afterAll(async () => {
    await app.stop();
    await other.stop();
  });

  const post = (target: TestApp, token: string, body: object, key?: string, simulated = false) => {
    let request = target.http.post('/api/v1/optouts').set('Authorization', `Token ${token}`);
    if (key !== undefined) request = request.set('Idempotency-Key', key);
    if (simulated) request = request.set('X-Mailroom-Mode', 'simulation');
    return request.send(body);
  };
  const rowsWithKey = (key: string) => app.deps.db.optout.findMany({ where: { idempotencyKey: key } });

  it('stores one of 40 opt-outs for different contacts sent at once with one key, and refuses the other 39 with 422', async () => {
    const key = randomUUID();
    const bodies = Array.from({ length: 40 }, () => optoutWebhook());
    const answers = await Promise.all(bodies.map((body, index) => post(index % 2 ? other : app, app.token, body, key)));
    const accepted = answers.filter((answer) => answer.status === 202);
    const refused = answers.filter((answer) => answer.status === 422);
    expect(accepted).toHaveLength(1);
    expect(refused).toHaveLength(39);
    for (const answer of refused) expect(answer.body).toEqual(KEY_REUSED);
    const rows = await rowsWithKey(key);
    expect(rows.map((row) => row.id)).toEqual([accepted[0]!.body.id]);
    // Nothing of the refused ones was stored under another key either.
    expect(await app.deps.db.optout.count({ where: { contactUuid: { in: bodies.map((body) => body.contact.uuid) } } })).toBe(1);
  });

  it('answers 40 opt-outs for one contact sent at once with one key with one 202 and 39 times 200 with that opt-out', async () => {
    const key = randomUUID();
    const body = optoutWebhook();
    const answers = await Promise.all(Array.from({ length: 40 }, (_, index) => post(index % 2 ? other : app, app.token, body, key)));
    expect(answers.filter((answer) => answer.status === 202)).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(39);
    expect(new Set(answers.map((answer) => answer.body.id)).size).toBe(1);
    expect(await rowsWithKey(key)).toHaveLength(1);
  });

  it('refuses a key the client already used for another contact, even after that opt-out was submitted, and stores nothing', async () => {
    const key = randomUUID();
    const first = await post(app, app.token, optoutWebhook(), key);
    expect(first.status).toBe(202);
    await app.deps.db.optout.update({ where: { id: first.body.id }, data: { status: 'submitted' } });
    const body = optoutWebhook();
    const reused = await post(app, app.token, body, key);
    expect(reused.status).toBe(422);
    expect(reused.body).toEqual(KEY_REUSED);
    expect(await app.deps.db.optout.count({ where: { contactUuid: body.contact.uuid } })).toBe(0);
    // RapidPro resending the first webhook still gets its record.
    const resent = await post(app, app.token, optoutWebhook({ uuid: first.body.contact_id }), key);
    expect(resent.status).toBe(200);
    expect(resent.body).toMatchObject({ id: first.body.id, status: 'submitted' });
  });

  it("never looks at another client's keys: the same key string from another client is a new opt-out", async () => {
    const stranger = await app.deps.apiClients.create(`stranger-${randomUUID()}`);
    const key = randomUUID();
    const mine = await post(app, app.token, optoutWebhook(), key);
    const theirs = await post(app, stranger.token, optoutWebhook(), key);
    expect([mine.status, theirs.status]).toEqual([202, 202]);
    expect(theirs.body.id).not.toBe(mine.body.id);
    // Each client's repeat finds its own opt-out.
    const theirRepeat = await post(app, stranger.token, optoutWebhook({ uuid: theirs.body.contact_id }), key);
    expect(theirRepeat.status).toBe(200);
    expect(theirRepeat.body.id).toBe(theirs.body.id);
    expect(new Set((await rowsWithKey(key)).map((row) => row.apiClientId)).size).toBe(2);
  });

  it('gives the same answers in simulation mode, storing nothing', async () => {
    const stranger = await app.deps.apiClients.create(`simulator-${randomUUID()}`);
    const key = randomUUID();
    const first = await post(app, app.token, optoutWebhook(), key);
    const elsewhere = optoutWebhook();
    const reused = await post(app, app.token, elsewhere, key, true);
    expect(reused.status).toBe(422);
    expect(reused.body).toEqual(KEY_REUSED);
    const repeat = await post(app, app.token, optoutWebhook({ uuid: first.body.contact_id }), key, true);
    expect(repeat.status).toBe(200);
    expect(repeat.body).toMatchObject({ id: first.body.id, simulated: true });
    const theirs = await post(app, stranger.token, elsewhere, key, true);
    expect(theirs.status).toBe(202);
    expect(theirs.body).toMatchObject({ contact_id: elsewhere.contact.uuid, status: 'queued', simulated: true });
    expect(await app.deps.db.optout.count({ where: { contactUuid: elsewhere.contact.uuid } })).toBe(0);
    expect(await rowsWithKey(key)).toHaveLength(1);
  });
});

describe('an opt-out is read only by the API client that created it', () => {
  let app: TestApp;
  let stranger: { token: string };
  beforeAll(async () => {
    app = await startTestApp();
    stranger = await app.deps.apiClients.create(`stranger-${randomUUID()}`);
  });
  afterAll(() => app.stop());

  const post = (token: string, body: object) => app.http.post('/api/v1/optouts').set('Authorization', `Token ${token}`).send(body);

  it("answers another client's opt-out id with 404, as an unknown one", async () => {
    const created = await post(app.token, optoutWebhook());
    expect(created.status).toBe(202);
    const own = await app.http.get(`/api/v1/optouts/${created.body.id}`).set('Authorization', `Token ${app.token}`);
    expect(own.status).toBe(200);
    const theirs = await app.http.get(`/api/v1/optouts/${created.body.id}`).set('Authorization', `Token ${stranger.token}`);
    const unknown = await app.http.get(`/api/v1/optouts/${randomUUID()}`).set('Authorization', `Token ${stranger.token}`);
    expect([theirs.status, theirs.body]).toEqual([404, { error: 'not found' }]);
    expect([theirs.status, theirs.body]).toEqual([unknown.status, unknown.body]);
  });

  it("answers a contact whose queued opt-out another client created with 200 and no more of it than a 202 shows", async () => {
    const body = optoutWebhook();
    const created = await post(app.token, body);
    // The earlier opt-out has a history of its own: an attempt and its error.
    await app.deps.db.optout.update({ where: { id: created.body.id }, data: { attempts: 1, lastError: 'openhim answered HTTP 503' } });
    const theirs = await post(stranger.token, { ...body, run: { uuid: randomUUID() } });
    expect(theirs.status).toBe(200);
    expect(theirs.body).toEqual({ id: created.body.id, contact_id: body.contact.uuid, status: 'queued' });
    // Its own client still gets the whole record.
    const mine = await post(app.token, { ...body, run: { uuid: randomUUID() } });
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ id: created.body.id, attempts: 1, last_error: 'openhim answered HTTP 503' });
    expect(await app.deps.db.optout.count({ where: { contactUuid: body.contact.uuid } })).toBe(1);
  });
});

describe('OpenHIM: only Jembi\'s JSON answer is a submission', () => {
  let app: TestApp;
  let partner: FakePartner;
  const answers = new Map<string, FakeAnswer[]>();

  beforeAll(async () => {
    partner = await startFakePartner();
    partner.on(OPENHIM_ROUTE, (request) => answers.get((request.body as { sid: string }).sid)?.shift() ?? JEMBI_OPTOUT_ACCEPTED);
    app = await startTestApp({ role: 'all', env: { ...openhimPartnerEnv(partner), OPTOUT_BACKOFF_MS: '20', OPTOUT_MAX_ATTEMPTS: '4' } });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  it.each<[string, FakeAnswer]>([
    ["a sign-on page (HTML) with 200", { status: 200, rawBody: '<html><body>Sign in</body></html>', headers: { 'content-type': 'text/html' } }],
    ['an empty 200', { status: 200, rawBody: '' }],
    ['JSON that does not parse, labelled JSON', { status: 200, rawBody: '{"success": tru', headers: { 'content-type': 'application/json' } }],
  ])('does not take %s for a submission: it is retried', async (_case, answer) => {
    const body = optoutWebhook({ urn: 'tel:+27820001001', fields: { facility_code: '123456', registered_by: '+27820001002' } });
    answers.set(body.contact.uuid, [answer]);
    const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
    expect(response.status).toBe(202);
    const row = await settledOptout(app, response.body.id);
    expect(row).toMatchObject({ status: 'submitted', attempts: 2 });
    const attempts = await eventually(async () => {
      const rows = await app.deps.db.optoutAttempt.findMany({ where: { optoutId: row.id }, orderBy: { number: 'asc' } });
      return rows.length === 2 ? rows : undefined;
    });
    expect(attempts[0]).toMatchObject({ outcome: 'transient', httpStatus: 200, error: expect.stringMatching(/^openhim answered 200 but not with JSON/) });
    expect(attempts[1]).toMatchObject({ outcome: 'success', httpStatus: 200 });
  });

  it.each<[string, string]>([
    ['as plain text', 'text/plain'],
    ["in OpenHIM's own JSON type", 'application/json+openhim'],
  ])('takes Jembi’s JSON labelled %s for a submission', async (_case, contentType) => {
    const body = optoutWebhook({ urn: 'tel:+27820001001', fields: { facility_code: '123456', registered_by: '+27820001002' } });
    answers.set(body.contact.uuid, [{ status: 200, rawBody: '{"success": "true"}', headers: { 'content-type': contentType } }]);
    const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
    expect(await settledOptout(app, response.body.id)).toMatchObject({ status: 'submitted', attempts: 1 });
  });
});
