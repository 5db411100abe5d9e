import { randomUUID } from 'node:crypto';
import { jobIdFor } from '../../src/optouts/queue';
import { optoutAcceptedSchema, optoutRecordSchema } from '../../src/optouts/schemas';
import { optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { rawPost } from '../helpers/raw-http';

let app: TestApp;
const auth = () => ({ Authorization: `Token ${app.token}` });

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.stop());

const rowsFor = (contactUuid: string) => app.deps.db.optout.count({ where: { contactUuid } });
const jobFor = (optoutId: string) => app.deps.optoutQueue.bullQueue.getJob(jobIdFor(optoutId));
/** What GET /api/v1/optouts/:id answers: a duplicate's 200 must be exactly this. */
const recordOf = async (optoutId: string) => (await app.http.get(`/api/v1/optouts/${optoutId}`).set(auth())).body as unknown;

describe('POST /api/v1/optouts authentication', () => {
  it.each([
    ['no Authorization header', {}],
    ['an unknown token', { Authorization: 'Token cmp_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['a malformed token', { Authorization: 'Token nonsense' }],
    ['the Bearer scheme', { Authorization: 'Bearer x' }],
  ])('answers 401 for %s and stores nothing', async (_case, headers: Record<string, string>) => {
    const body = optoutWebhook();
    const response = await app.http.post('/api/v1/optouts').set(headers).send(body);
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: 'unauthorized' });
    expect(await rowsFor(body.contact.uuid)).toBe(0);
  });

  it('refuses a token once its client is revoked', async () => {
    const client = await app.deps.apiClients.create(`revoked-${randomUUID()}`);
    const ok = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${client.token}`).send(optoutWebhook());
    expect(ok.status).toBe(202);
    expect(await app.deps.apiClients.revoke(client.name)).toBe(true);
    const refused = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${client.token}`).send(optoutWebhook());
    expect(refused.status).toBe(401);
    expect(refused.body).toEqual({ error: 'unauthorized' });
  });

  it('refuses a token whose secret differs in one character', async () => {
    const lastChar = app.token.at(-1) === 'A' ? 'B' : 'A';
    const nearMiss = app.token.slice(0, -1) + lastChar;
    const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${nearMiss}`).send(optoutWebhook());
    expect(response.status).toBe(401);
  });
});

describe('POST /api/v1/optouts', () => {
  it('commits the row and enqueues its job before answering 202', async () => {
    const body = optoutWebhook();
    const response = await app.http.post('/api/v1/optouts').set(auth()).send(body);
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ id: expect.any(String), contact_id: body.contact.uuid, status: 'queued' });
    expect(response.headers.location).toBe(`/api/v1/optouts/${response.body.id}`);
    expect(optoutAcceptedSchema.safeParse(response.body).success).toBe(true);
    const row = await app.deps.db.optout.findUnique({ where: { id: response.body.id } });
    expect(row).toMatchObject({ contactUuid: body.contact.uuid, contactUrn: 'whatsapp:27820001001', reasonCategory: 'job_change', status: 'queued' });
    expect((await jobFor(response.body.id))?.data).toEqual({ id: response.body.id });
  });

  it('accepts the body of a flow migrated from legacy RapidPro, with everything the companion does not use', async () => {
    const contactUuid = randomUUID();
    const runUuid = randomUUID();
    const flowUuid = randomUUID();
    const channel = { uuid: randomUUID(), name: 'NurseConnect WhatsApp' };
    const result = (name: string, value: string, category: string) => ({
      name,
      value,
      category,
      category_localized: category,
      node_uuid: randomUUID(),
      input: value,
      created_on: '2026-11-26T10:14:59.512345Z',
    });
    // goflow's legacy webhook body, with contact.groups as bodies built on @(json(contact)) carry.
    const body = {
      contact: { uuid: contactUuid, name: 'Jane', urn: 'whatsapp:27820001001', groups: [{ uuid: randomUUID(), name: 'NurseConnect' }] },
      flow: { uuid: flowUuid, name: 'NurseConnect opt-out', revision: 42 },
      path: [
        { uuid: randomUUID(), node_uuid: randomUUID(), arrived_on: '2026-11-26T10:14:50.000001Z', exit_uuid: randomUUID() },
        { uuid: randomUUID(), node_uuid: randomUUID(), arrived_on: '2026-11-26T10:14:59.600000Z' },
      ],
      results: { language: result('Language', '1', 'English'), optout_reason: result('Optout Reason', 'job change', 'job_change') },
      run: { uuid: runUuid, created_on: '2026-11-26T10:14:50.000000Z' },
      input: { uuid: randomUUID(), type: 'msg', channel, urn: 'whatsapp:27820001001', text: 'job change', attachments: [], created_on: '2026-11-26T10:14:59.000000Z' },
      channel,
    };
    const response = await app.http.post('/api/v1/optouts').set(auth()).send(body);
    expect(response.status).toBe(202);
    const row = await app.deps.db.optout.findUnique({ where: { id: response.body.id } });
    expect(row).toMatchObject({ contactUuid, contactUrn: 'whatsapp:27820001001', reasonCategory: 'job_change', reasonValue: 'job change', flowUuid, runUuid });
  });

  it('reads a body without Content-Type as JSON', async () => {
    const body = optoutWebhook();
    const response = await rawPost(`${app.baseUrl}/api/v1/optouts`, JSON.stringify(body), auth());
    expect(response.status).toBe(202);
    expect(await rowsFor(body.contact.uuid)).toBe(1);
  });

  it('answers 400 invalid JSON for a malformed body and stores nothing', async () => {
    const response = await rawPost(`${app.baseUrl}/api/v1/optouts`, '{"contact": {"uuid": ', { ...auth(), 'content-type': 'application/json' });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'invalid JSON' });
  });

  it('accepts a body of exactly 256 KiB and answers 413 for one byte more', async () => {
    const LIMIT = 256 * 1024;
    /** The webhook as exactly `bytes` bytes of JSON, padded in a field the companion ignores. */
    const bodyOf = (bytes: number) => {
      const body = { ...optoutWebhook(), padding: '' };
      body.padding = 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(body)));
      const text = JSON.stringify(body);
      expect(Buffer.byteLength(text)).toBe(bytes);
      return { text, contactUuid: body.contact.uuid };
    };
    const headers = { ...auth(), 'content-type': 'application/json' };
    const atLimit = bodyOf(LIMIT);
    const accepted = await rawPost(`${app.baseUrl}/api/v1/optouts`, atLimit.text, headers);
    expect(accepted.status).toBe(202);
    expect(await rowsFor(atLimit.contactUuid)).toBe(1);
    const over = bodyOf(LIMIT + 1);
    const refused = await rawPost(`${app.baseUrl}/api/v1/optouts`, over.text, headers);
    expect(refused.status).toBe(413);
    expect(await rowsFor(over.contactUuid)).toBe(0);
  });

  it('answers 413 for a body over 256 KiB', async () => {
    const body = { ...optoutWebhook(), padding: 'x'.repeat(256 * 1024) };
    const response = await app.http.post('/api/v1/optouts').set(auth()).send(body);
    expect(response.status).toBe(413);
    expect(await rowsFor(body.contact.uuid)).toBe(0);
  });

  it('answers 415 for a body of another content type', async () => {
    const response = await rawPost(`${app.baseUrl}/api/v1/optouts`, 'contact=1', { ...auth(), 'content-type': 'application/x-www-form-urlencoded' });
    expect(response.status).toBe(415);
    expect(response.body).toEqual({ error: 'content type must be application/json' });
  });

  it('answers 400 with details for an invalid contact uuid and stores nothing', async () => {
    const body = optoutWebhook({ uuid: 'not-a-uuid' });
    // Counted by this request's own run uuid: other test files write opt-outs to the same database meanwhile.
    const rowsOfThisRun = () => app.deps.db.optout.count({ where: { runUuid: body.run.uuid } });
    const response = await app.http.post('/api/v1/optouts').set(auth()).send(body);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'invalid request', details: [{ path: 'contact.uuid', message: expect.any(String) }] });
    expect(await rowsOfThisRun()).toBe(0);
  });

  it('answers 400 when the contact is missing', async () => {
    const response = await app.http.post('/api/v1/optouts').set(auth()).send({ flow: {} });
    expect(response.status).toBe(400);
    expect(response.body.details).toEqual([{ path: 'contact', message: expect.any(String) }]);
  });

  it('in simulation mode answers as usual with simulated: true, and stores and enqueues nothing', async () => {
    const body = optoutWebhook();
    const counts = await app.deps.optoutQueue.bullQueue.getJobCounts();
    const response = await app.http.post('/api/v1/optouts').set(auth()).set('X-Mailroom-Mode', 'simulation').send(body);
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ id: expect.any(String), contact_id: body.contact.uuid, status: 'queued', simulated: true });
    expect(await rowsFor(body.contact.uuid)).toBe(0);
    expect(await app.deps.optoutQueue.bullQueue.getJobCounts()).toEqual(counts);
  });

  it('in simulation mode answers a repeat as a real request would, with its earlier record, and stores nothing', async () => {
    const key = randomUUID();
    const body = optoutWebhook();
    const first = await app.http.post('/api/v1/optouts').set(auth()).set('Idempotency-Key', key).send(body);
    expect(first.status).toBe(202);
    const earlier = (await app.http.get(`/api/v1/optouts/${first.body.id}`).set(auth())).body;
    const simulate = (request: ReturnType<typeof app.http.post>) => request.set(auth()).set('X-Mailroom-Mode', 'simulation');
    const sameKey = await simulate(app.http.post('/api/v1/optouts').set('Idempotency-Key', key)).send({ ...body, run: { uuid: randomUUID() } });
    expect(sameKey.status).toBe(200);
    expect(sameKey.body).toEqual({ ...earlier, simulated: true });
    const sameContact = await simulate(app.http.post('/api/v1/optouts')).send(body);
    expect(sameContact.status).toBe(200);
    expect(sameContact.body).toEqual({ ...earlier, simulated: true });
    expect(await rowsFor(body.contact.uuid)).toBe(1);
  });

  it('still validates in simulation mode', async () => {
    const response = await app.http
      .post('/api/v1/optouts')
      .set(auth())
      .set('X-Mailroom-Mode', 'simulation')
      .send(optoutWebhook({ uuid: 'nope' }));
    expect(response.status).toBe(400);
  });

  it('answers a repeated Idempotency-Key for the same contact with 200 and the earlier record, creating nothing', async () => {
    const key = randomUUID();
    const body = optoutWebhook();
    const first = await app.http.post('/api/v1/optouts').set(auth()).set('Idempotency-Key', key).send(body);
    // Submitted meanwhile: only the key makes the repeat a duplicate.
    await app.deps.db.optout.update({ where: { id: first.body.id }, data: { status: 'submitted' } });
    const second = await app.http.post('/api/v1/optouts').set(auth()).set('Idempotency-Key', key).send(body);
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(await recordOf(first.body.id));
    expect(second.body).toMatchObject({ status: 'submitted', attempts: 0 });
    expect(await app.deps.db.optout.count({ where: { idempotencyKey: key } })).toBe(1);
  });

  it('answers a contact that already has a queued opt-out with 200 and that record', async () => {
    const body = optoutWebhook();
    const first = await app.http.post('/api/v1/optouts').set(auth()).send(body);
    const second = await app.http.post('/api/v1/optouts').set(auth()).send({ ...body, run: { uuid: randomUUID() } });
    expect(second.status).toBe(200);
    expect(second.body).toEqual(await recordOf(first.body.id));
    expect(await rowsFor(body.contact.uuid)).toBe(1);
  });

  it('creates one row and one job when the same webhook arrives many times at once', async () => {
    const body = optoutWebhook();
    const answers = await Promise.all(Array.from({ length: 12 }, () => app.http.post('/api/v1/optouts').set(auth()).send(body)));
    const ids = new Set(answers.map((answer) => answer.body.id));
    expect(ids.size).toBe(1);
    expect(answers.filter((answer) => answer.status === 202)).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(11);
    expect(await rowsFor(body.contact.uuid)).toBe(1);
    const jobs = await app.deps.optoutQueue.bullQueue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
    expect(jobs.filter((job) => job.data.id === [...ids][0])).toHaveLength(1);
  });
});

describe('GET /api/v1/optouts/:id', () => {
  it('answers the record in the contract shape', async () => {
    const created = await app.http.post('/api/v1/optouts').set(auth()).send(optoutWebhook());
    const response = await app.http.get(`/api/v1/optouts/${created.body.id}`).set(auth());
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      id: created.body.id,
      contact_id: created.body.contact_id,
      status: 'queued',
      attempts: 0,
      last_error: null,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      submitted_at: null,
    });
    // The documented schema (OpenAPI) describes what is really answered.
    expect(optoutRecordSchema.safeParse(response.body).success).toBe(true);
  });

  it.each([randomUUID(), 'not-a-uuid'])('answers 404 for %s', async (id) => {
    const response = await app.http.get(`/api/v1/optouts/${id}`).set(auth());
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: 'not found' });
  });

  it('needs a token', async () => {
    const response = await app.http.get(`/api/v1/optouts/${randomUUID()}`);
    expect(response.status).toBe(401);
  });
});
