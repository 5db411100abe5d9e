import { randomUUID } from 'node:crypto';
import { jobIdOf } from '../../src/jobs/queue';
import { createReconcilerLock, reconcileQueue } from '../../src/jobs/reconciler';
import { TEMPLATE_SEND_JOBS } from '../../src/whatsapp/template-sends';
import { eventually, startTestApp, type TestApp } from '../helpers/app';
import { createScratchDatabase } from '../helpers/env';
import { PARTNER_SECRETS, Script, startFakePartner, type FakeAnswer, type FakePartner, type ReceivedRequest } from '../helpers/fake-partner';
import { CLOUD_MESSAGES_ROUTE, closedPortUrl, cloudAccepted, cloudEnv, cloudError, cloudMessageIdFor, cloudTemplateMessage, freshNumber, rapidproDefaultBody, withTestApp } from './support';

const SENDS = '/api/v1/whatsapp/template-sends';
const BACKOFF_MS = 200;
const TIMEOUT_MS = 1000;
const MAX_ATTEMPTS = 3;
const template = { name: 'appointment_reminder' };
const iso = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

/** Meta's answer when the template is not approved in the language asked for ("WhatsApp error codes": 132001). */
const templateMissing = cloudError(400, 132001, 'Template name does not exist in the translation', 'template name (appointment_reminder) does not exist in en');
/** Meta's "API Service" error: temporary downtime or overload ("WhatsApp error codes": 2). */
const serviceUnavailable = (headers: Record<string, string> = {}) =>
  cloudError(503, 2, 'Service temporarily unavailable', 'Service temporarily unavailable. Please retry your request.', headers);

let upstream: FakePartner;
let app: TestApp;
let database: Awaited<ReturnType<typeof createScratchDatabase>>;
const script = new Script();

beforeAll(async () => {
  // A database of its own: the worker's reconciler sends every queued send it finds, other files' too.
  database = await createScratchDatabase('template_sends');
  upstream = await startFakePartner();
  upstream.on(CLOUD_MESSAGES_ROUTE, (request) => script.next(recipientOf(request), cloudAccepted(recipientOf(request))));
  app = await startTestApp({
    role: 'all',
    env: {
      ...cloudEnv(upstream),
      DATABASE_URL: database.url,
      WHATSAPP_SEND_BACKOFF_MS: String(BACKOFF_MS),
      WHATSAPP_TIMEOUT_MS: String(TIMEOUT_MS),
      WHATSAPP_SEND_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      // The reconciler runs at start-up only: the test that needs another run starts it itself.
      RECONCILE_INTERVAL_MS: '600000',
    },
  });
});
afterAll(async () => {
  await app.stop();
  await upstream.stop();
  await database.drop();
});

function recipientOf(request: ReceivedRequest): string {
  return (request.body as { to: string }).to;
}
const callsTo = (to: string) => upstream.received(CLOUD_MESSAGES_ROUTE).filter((request) => recipientOf(request) === to);

function post(body: object | string, headers: Record<string, string> = {}, token = app.token, query = '') {
  return app.http.post(`${SENDS}${query}`).set('Authorization', `Token ${token}`).set(headers).type('json').send(body);
}
const read = (id: string, token = app.token) => app.http.get(`${SENDS}/${id}`).set('Authorization', `Token ${token}`);

async function queueSend(body: object, headers: Record<string, string> = {}): Promise<string> {
  const response = await post(body, headers);
  expect(response.status).toBe(202);
  return response.body.id as string;
}

const rowOf = (id: string) => app.deps.db.templateSend.findUnique({ where: { id } });
const jobStateOf = (id: string) => app.deps.templateSendQueue.bullQueue.getJobState(jobIdOf(TEMPLATE_SEND_JOBS, id));

/** The send's row once it is sent, failed or cancelled and its job is over: no try is running or still to come. */
function finished(id: string) {
  return eventually(async () => {
    const row = await rowOf(id);
    return row && row.status !== 'queued' && (await jobStateOf(id)) === 'completed' ? row : undefined;
  });
}

/** A queued send committed without a job, as the web process leaves one while Redis is away. */
async function sendWithoutJob(to = freshNumber()): Promise<string> {
  const client = await app.deps.apiClients.authenticate(app.token);
  const request = { to, name: template.name, language: 'en', params: [], contactUuid: null };
  const stored = await app.deps.templateSendStore.insert({ id: randomUUID(), api: 'cloud', request, apiClientId: client!.id, idempotencyKey: null });
  if (!('created' in stored)) throw new Error('a new send without an Idempotency-Key is always created');
  return stored.created.id;
}

/** Every job the queue holds or kept, whatever its state. */
async function jobsInQueue(): Promise<number> {
  const counts = await app.deps.templateSendQueue.bullQueue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

describe('POST /api/v1/whatsapp/template-sends, then the worker', () => {
  it('answers 202 with the send\'s Location, commits it first, then sends exactly the Cloud API body once and records the message id', async () => {
    const to = freshNumber();
    const response = await post({ to, template: { name: 'appointment_reminder', language: 'en', params: ['Jane', 'Monday'] } });
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ id: expect.any(String), status: 'queued' });
    const id = response.body.id as string;
    expect(response.headers.location).toBe(`${SENDS}/${id}`);
    expect(await rowOf(id)).not.toBeNull();

    await finished(id);
    const record = await app.http.get(response.headers.location!).set('Authorization', `Token ${app.token}`);
    expect(record.status).toBe(200);
    expect(record.body).toEqual({
      id,
      template: 'appointment_reminder',
      language: 'en',
      status: 'sent',
      attempts: 1,
      message_id: cloudMessageIdFor(to),
      last_error: null,
      created_at: iso,
      updated_at: iso,
      sent_at: iso,
    });
    expect(Date.parse(record.body.sent_at)).toBeGreaterThanOrEqual(Date.parse(record.body.created_at));

    const [call, ...others] = callsTo(to);
    expect(others).toEqual([]);
    expect(call!.headers.authorization).toBe(`Bearer ${PARTNER_SECRETS.whatsappToken}`);
    expect(call!.body).toEqual(cloudTemplateMessage(to, 'appointment_reminder', 'en', ['Jane', 'Monday']));
  });

  it("takes RapidPro's default body and the template from the query, as the synchronous route does", async () => {
    const to = freshNumber();
    const body = rapidproDefaultBody(`whatsapp:${to.slice(1)}`);
    const response = await post(body, {}, app.token, '?template=appointment_reminder&language=pt_BR&param=Joana');
    expect(response.status).toBe(202);
    expect(await finished(response.body.id)).toMatchObject({ status: 'sent', language: 'pt_BR', contactUuid: body.contact.uuid });
    expect(callsTo(to).map((call) => call.body)).toEqual([cloudTemplateMessage(to, 'appointment_reminder', 'pt_BR', ['Joana'])]);
  });

  // Meta sends its rate-limit codes under 400 (RapidPro's courier judges them by code, whatever the status); a 429 is a relay's.
  it.each([429, 400])("waits out a throttling answer's Retry-After (HTTP %i, code 130429), with every other send paused meanwhile, then sends", async (status) => {
    const limited = freshNumber();
    const other = freshNumber();
    script.set(limited, cloudError(status, 130429, 'Rate limit hit', 'Cloud API message throughput has been reached.', { 'retry-after': '1' }));
    const id = await queueSend({ to: limited, template });
    // The worker pauses the queue before it moves the job to its delayed retry: once delayed, the pause is on.
    await eventually(async () => ((await jobStateOf(id)) === 'delayed' ? true : undefined));
    const otherId = await queueSend({ to: other, template });

    expect(await finished(id)).toMatchObject({ status: 'sent', attempts: 2, messageId: cloudMessageIdFor(limited), lastError: null });
    expect(await finished(otherId)).toMatchObject({ status: 'sent', attempts: 1 });
    const [refused, retried, ...more] = callsTo(limited);
    expect(more).toEqual([]);
    expect(refused!.answeredStatus).toBe(status);
    expect(retried!.receivedAt - refused!.receivedAt).toBeGreaterThanOrEqual(1000);
    expect(callsTo(other)).toHaveLength(1);
    expect(callsTo(other)[0]!.receivedAt - refused!.receivedAt).toBeGreaterThanOrEqual(1000);
    expect((await read(id)).body).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('takes a Retry-After of 0 as no pause at all: the send is tried again on its backoff, as a retry, not as a failed job', async () => {
    const to = freshNumber();
    script.set(to, cloudError(429, 130429, 'Rate limit hit', 'Cloud API message throughput has been reached.', { 'retry-after': '0' }));
    const id = await queueSend({ to, template });
    expect(await finished(id)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(app.logs.filter((line) => line.includes(id) && line.includes('failed unexpectedly'))).toEqual([]);
  });

  it('counts a send WhatsApp accepted with an answer too large to read as sent, without its id, and never sends it again', async () => {
    const to = freshNumber();
    script.set(to, { status: 200, body: { messaging_product: 'whatsapp', messages: [{ id: 'wamid.large' }], padding: 'x'.repeat(1_100_000) } });
    const id = await queueSend({ to, template });
    expect(await finished(id)).toMatchObject({ status: 'sent', attempts: 1, messageId: null, upstreamStatus: 200 });
    expect(callsTo(to)).toHaveLength(1);
  });

  it("tries a send again after the pair rate limit (131056, one recipient's), without pausing the other sends", async () => {
    const limited = freshNumber();
    const other = freshNumber();
    script.set(limited, cloudError(400, 131056, '(Business Account, Consumer Account) pair rate limit hit', 'Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.', { 'retry-after': '2' }));
    const id = await queueSend({ to: limited, template });
    await eventually(async () => ((await jobStateOf(id)) === 'delayed' ? true : undefined));
    const otherId = await queueSend({ to: other, template });

    expect(await finished(otherId)).toMatchObject({ status: 'sent', attempts: 1 });
    const [refused] = callsTo(limited);
    expect(callsTo(other)[0]!.receivedAt - refused!.receivedAt).toBeLessThan(2000);
    expect(await finished(id)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(callsTo(limited)[1]!.receivedAt - refused!.receivedAt).toBeGreaterThanOrEqual(2000);
  });

  it('fails a send at once when WhatsApp answers 2xx with an error in its body, judging it by its code as for any refusal', async () => {
    const to = freshNumber();
    script.set(to, { ...cloudError(200, 131026, 'Message undeliverable', 'Unable to deliver message.') });
    const id = await queueSend({ to, template });
    const row = await finished(id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1, upstreamStatus: 200, messageId: null });
    expect(row!.lastError).toContain('131026');
    expect(callsTo(to)).toHaveLength(1);
  });

  it.each<[string, (to: string) => FakeAnswer, number]>([
    ['a 503', () => serviceUnavailable(), 0],
    ['no answer within WHATSAPP_TIMEOUT_MS', (to) => ({ ...cloudAccepted(to), delayMs: TIMEOUT_MS * 1.5 }), TIMEOUT_MS],
  ])('tries again after %s, WHATSAPP_SEND_BACKOFF_MS later, and records the second try sent', async (_case, firstAnswer, firstTryMs) => {
    const to = freshNumber();
    script.set(to, firstAnswer(to));
    const id = await queueSend({ to, template });
    expect(await finished(id)).toMatchObject({ status: 'sent', attempts: 2, messageId: cloudMessageIdFor(to), lastError: null });
    const [first, second, ...more] = callsTo(to);
    expect(more).toEqual([]);
    // The first retry waits between half and all of WHATSAPP_SEND_BACKOFF_MS (jitter); the default (10 s) would be 5 s at least.
    const gap = second!.receivedAt - first!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(firstTryMs + BACKOFF_MS / 2);
    expect(gap).toBeLessThan(firstTryMs + 5000);
  });

  it('tries again while nothing listens at WHATSAPP_URL, until WHATSAPP_SEND_MAX_ATTEMPTS tries', async () => {
    const settings = { ...cloudEnv(upstream), WHATSAPP_URL: await closedPortUrl(), DATABASE_URL: database.url, WHATSAPP_SEND_BACKOFF_MS: String(BACKOFF_MS) };
    // Its reconciler leaves alone the sends the file's own app has queued.
    const unreachable = await startTestApp({ role: 'all', env: { ...settings, WHATSAPP_SEND_MAX_ATTEMPTS: String(MAX_ATTEMPTS), RECONCILE_GRACE_MS: '3600000' } });
    try {
      const response = await unreachable.http.post(SENDS).set('Authorization', `Token ${unreachable.token}`).send({ to: freshNumber(), template });
      expect(response.status).toBe(202);
      const row = await eventually(async () => {
        const current = await unreachable.deps.db.templateSend.findUnique({ where: { id: response.body.id } });
        return current?.status === 'queued' ? undefined : current;
      });
      expect(row).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS, upstreamStatus: null, lastError: `gave up after ${MAX_ATTEMPTS} attempts: upstream unavailable (ECONNREFUSED)` });
    } finally {
      await unreachable.stop();
    }
  });

  it("fails a send WhatsApp refuses (400) at once, after one call, with WhatsApp's code and message", async () => {
    const to = freshNumber();
    script.set(to, templateMissing);
    const id = await queueSend({ to, template });
    expect(await finished(id)).toMatchObject({ status: 'failed', attempts: 1, upstreamStatus: 400, messageId: null, sentAt: null });
    expect(callsTo(to)).toHaveLength(1);
    const record = await read(id);
    expect(record.body).toMatchObject({ status: 'failed', attempts: 1, message_id: null, sent_at: null });
    expect(record.body.last_error).toContain('132001');
    expect(record.body.last_error).toContain('Template name does not exist in the translation');
  });

  it('gives up after WHATSAPP_SEND_MAX_ATTEMPTS tries WhatsApp could not take, naming the last error', async () => {
    const to = freshNumber();
    script.set(to, ...Array.from({ length: MAX_ATTEMPTS }, () => serviceUnavailable()));
    const id = await queueSend({ to, template });
    const row = await finished(id);
    expect(row).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS, upstreamStatus: 503, messageId: null });
    expect(row.lastError).toBe(`gave up after ${MAX_ATTEMPTS} attempts: 2 (#2) Service temporarily unavailable Service temporarily unavailable. Please retry your request.`);
    expect(callsTo(to)).toHaveLength(MAX_ATTEMPTS);
  });

  it('counts sends queued, sent, failed and retried in /metrics', async () => {
    // Read as numbers at once: prom-client hands out its live value objects.
    const counts = async () =>
      Object.fromEntries((await app.deps.metrics.templateSends.get()).values.map((value) => [value.labels.outcome, value.value]));
    const before = await counts();
    const retried = freshNumber();
    const refused = freshNumber();
    script.set(retried, serviceUnavailable());
    script.set(refused, templateMissing);
    await Promise.all([finished(await queueSend({ to: retried, template })), finished(await queueSend({ to: refused, template }))]);
    const after = await counts();
    const added = (outcome: string) => (after[outcome] ?? 0) - (before[outcome] ?? 0);
    expect({ queued: added('queued'), sent: added('sent'), failed: added('failed'), retried: added('retried') }).toEqual({ queued: 2, sent: 1, failed: 1, retried: 1 });
    expect((await app.http.get('/metrics')).text).toMatch(/companion_template_sends_total\{outcome="retried",service="companion"\} \d+/);
  });

  it('in the simulator, answers simulated and neither stores, queues nor sends', async () => {
    const to = freshNumber();
    const jobsBefore = await jobsInQueue();
    const response = await post({ to, template }, { 'X-Mailroom-Mode': 'simulation' });
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ id: expect.any(String), status: 'queued', simulated: true });
    expect(response.headers.location).toBeUndefined();
    const invalid = await post({ to, template: { name: 'Not A Template' } }, { 'X-Mailroom-Mode': 'simulation' });
    expect(invalid.status).toBe(400);

    expect(await app.deps.db.templateSend.count({ where: { recipient: to } })).toBe(0);
    expect(await jobsInQueue()).toBe(jobsBefore);
    expect((await read(response.body.id)).status).toBe(404);
    expect(callsTo(to)).toEqual([]);
  });
});

describe('Idempotency-Key', () => {
  it('answers a repeat 200 with the first send, and a repeat with another request 422, storing and sending nothing more', async () => {
    const to = freshNumber();
    const key = `run-${randomUUID()}`;
    const body = { to, template: { name: 'appointment_reminder', params: ['Jane'] } };
    const first = await post(body, { 'Idempotency-Key': key });
    expect(first.status).toBe(202);
    const id = first.body.id as string;
    await finished(id);

    const repeat = await post(body, { 'Idempotency-Key': key });
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual((await read(id)).body);
    expect(repeat.body).toMatchObject({ id, status: 'sent' });
    // The simulator is told what the same request would get.
    const simulated = await post(body, { 'Idempotency-Key': key, 'X-Mailroom-Mode': 'simulation' });
    expect(simulated.status).toBe(200);
    expect(simulated.body).toEqual({ ...repeat.body, simulated: true });

    const otherParams = await post({ ...body, template: { ...body.template, params: ['Joan'] } }, { 'Idempotency-Key': key });
    expect(otherParams.status).toBe(422);
    expect(otherParams.body).toEqual({ error: 'Idempotency-Key already used for another request' });
    const otherRecipient = freshNumber();
    expect((await post({ ...body, to: otherRecipient }, { 'Idempotency-Key': key })).status).toBe(422);

    expect(await app.deps.db.templateSend.count({ where: { recipient: to } })).toBe(1);
    expect(await app.deps.db.templateSend.count({ where: { recipient: otherRecipient } })).toBe(0);
    expect(await jobStateOf(id)).toBe('completed');
    expect(callsTo(to)).toHaveLength(1);
    expect(callsTo(otherRecipient)).toEqual([]);
  });

  it('answers two requests racing with one key with one send: 202 and 200', async () => {
    const to = freshNumber();
    const headers = { 'Idempotency-Key': `run-${randomUUID()}` };
    const answers = await Promise.all([post({ to, template }, headers), post({ to, template }, headers)]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 202]);
    expect(answers[0]!.body.id).toBe(answers[1]!.body.id);
    await finished(answers[0]!.body.id);
    expect(await app.deps.db.templateSend.count({ where: { recipient: to } })).toBe(1);
    expect(callsTo(to)).toHaveLength(1);
  });

  it("keeps API clients apart: another client's key is its own, and its sends are 404 to others", async () => {
    const to = freshNumber();
    const headers = { 'Idempotency-Key': `run-${randomUUID()}` };
    const { token: otherToken } = await app.deps.apiClients.create(`template-sends-${randomUUID()}`);
    const ours = await post({ to, template }, headers);
    const theirs = await post({ to, template }, headers, otherToken);
    expect([ours.status, theirs.status]).toEqual([202, 202]);
    expect(theirs.body.id).not.toBe(ours.body.id);

    expect((await read(ours.body.id, otherToken)).status).toBe(404);
    expect((await read(theirs.body.id)).status).toBe(404);
    expect((await read(theirs.body.id, otherToken)).body).toMatchObject({ id: theirs.body.id });
    await Promise.all([finished(ours.body.id), finished(theirs.body.id)]);
    expect(callsTo(to)).toHaveLength(2);
  });
});

describe('requests refused', () => {
  it.each<[string, object | string, Record<string, string>, string]>([
    ['no recipient', { template }, {}, ''],
    ['no template', { to: '+27820001001' }, {}, ''],
    ['a template name WhatsApp cannot have', { to: '+27820001001', template: { name: 'Not A Template' } }, {}, ''],
    ['a bad language in the query', { to: '+27820001001' }, {}, '?template=hello_world&language=English'],
    ['a blank Idempotency-Key', { to: '+27820001001', template }, { 'Idempotency-Key': '   ' }, ''],
    ['JSON that does not parse', '{"to": "+27820001001",', {}, ''],
  ])('answers 400 for %s, and neither stores nor queues anything', async (_case, body, headers, query) => {
    const [rowsBefore, jobsBefore] = [await app.deps.db.templateSend.count(), await jobsInQueue()];
    const response = await post(body, headers, app.token, query);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: expect.any(String) });
    expect(await app.deps.db.templateSend.count()).toBe(rowsBefore);
    expect(await jobsInQueue()).toBe(jobsBefore);
  });

  it('answers 401 without a token', async () => {
    expect((await app.http.post(SENDS).send({ to: '+27820001001', template })).status).toBe(401);
    expect((await app.http.get(`${SENDS}/${randomUUID()}`)).status).toBe(401);
  });

  it('answers 404 for a send that does not exist, or an id that is no UUID', async () => {
    expect((await read(randomUUID())).status).toBe(404);
    expect((await read('not-a-uuid')).status).toBe(404);
  });

  it('answers 503 naming what is missing while WhatsApp is not configured, and stores nothing', async () => {
    await withTestApp({ DATABASE_URL: database.url }, async (unset) => {
      const to = freshNumber();
      const response = await unset.http.post(SENDS).set('Authorization', `Token ${unset.token}`).send({ to, template });
      expect(response.status).toBe(503);
      expect(response.body).toEqual({ error: 'WhatsApp is not configured: set WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID' });
      expect(await unset.deps.db.templateSend.count({ where: { recipient: to } })).toBe(0);
    });
  });
});

describe('the reconciler', () => {
  /** Deletes this app's queue keys only (never the shared Redis' others), as a flush or a Redis restarted empty would. */
  async function dropQueueKeys(): Promise<void> {
    const keys = await app.deps.redis.keys(`${app.deps.config.queuePrefix}:*`);
    if (keys.length > 0) await app.deps.redis.del(...keys);
  }

  it("re-queues sends whose jobs Redis lost: one waiting out a Retry-After with what is left of the wait, one due at once", async () => {
    const waiting = freshNumber();
    script.set(waiting, serviceUnavailable({ 'retry-after': '120' }));
    const waitingId = await queueSend({ to: waiting, template });
    await eventually(async () => ((await jobStateOf(waitingId)) === 'delayed' ? true : undefined));
    await dropQueueKeys();
    // Committed while Redis was away: a row, and no job.
    const due = freshNumber();
    const dueId = await sendWithoutJob(due);

    const run = await reconcileQueue({
      queued: app.deps.templateSendStore.queued,
      queue: app.deps.templateSendQueue,
      logger: app.deps.logger,
      graceMs: 0,
      lock: createReconcilerLock(app.deps.redis, app.deps.config.queuePrefix, app.deps.templateSendQueue, 60_000),
    });
    expect(run).toMatchObject({ enqueued: 2, failed: 0 });

    const job = (await app.deps.templateSendQueue.bullQueue.getJob(jobIdOf(TEMPLATE_SEND_JOBS, waitingId)))!;
    expect(await job.getState()).toBe('delayed');
    const dueInMs = job.timestamp + job.delay - Date.now();
    expect(dueInMs).toBeGreaterThan(100_000);
    expect(dueInMs).toBeLessThanOrEqual(120_000);
    expect(await finished(dueId)).toMatchObject({ status: 'sent', attempts: 1 });
    expect(callsTo(waiting)).toHaveLength(1);
    await app.deps.templateSends.cancel(waitingId, 'test over');
  });
});

describe('one try at a time', () => {
  it('claims a send once: while its lease lasts no other claim takes it, and the next claim counts another try', async () => {
    const id = await sendWithoutJob();
    const store = app.deps.templateSendStore;
    expect(await store.claim(id, 60_000)).toMatchObject({ id, attempts: 1, priorAttempts: 0, request: { name: template.name } });
    expect(await store.claim(id, 60_000)).toBeNull();
    expect(await rowOf(id)).toMatchObject({ status: 'queued', attempts: 1, leaseUntil: expect.any(Date) });

    await app.deps.db.$executeRaw`UPDATE template_sends SET lease_until = now() - interval '1 second' WHERE id = ${id}::uuid`;
    expect(await store.claim(id, 60_000)).toMatchObject({ id, attempts: 2 });
    await store.record(id, { status: 'failed', lastError: 'test over', upstreamStatus: null });
    expect(await rowOf(id)).toMatchObject({ status: 'failed', attempts: 2, leaseUntil: null });
  });

  it('leaves a send another worker has under way alone until its lease ends, then sends it once', async () => {
    const to = freshNumber();
    const id = await sendWithoutJob(to);
    // Another worker took it a moment ago and froze (or died) without a word.
    await app.deps.templateSendStore.claim(id, 1500);
    const leaseUntil = (await rowOf(id))!.leaseUntil!.getTime();
    await app.deps.templateSendQueue.ensureQueued(id);

    expect(await finished(id)).toMatchObject({ status: 'sent', attempts: 2, leaseUntil: null });
    const [call, ...more] = callsTo(to);
    expect(more).toEqual([]);
    expect(call!.receivedAt).toBeGreaterThanOrEqual(leaseUntil);
  });
});

describe('staff retry and cancel (the service)', () => {
  const service = () => app.deps.templateSends;

  it('retries only failed or cancelled sends, each for a fresh round of WHATSAPP_SEND_MAX_ATTEMPTS tries', async () => {
    const to = freshNumber();
    script.set(to, ...Array.from({ length: MAX_ATTEMPTS }, () => serviceUnavailable()));
    const failedId = await queueSend({ to, template });
    const sentId = await queueSend({ to: freshNumber(), template });
    expect(await finished(failedId)).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS });
    await finished(sentId);

    // Two more 503s: within a fresh round of tries, not the failed one's used-up count.
    script.set(to, serviceUnavailable(), serviceUnavailable());
    const unknown = randomUUID();
    expect(await service().retry([failedId, sentId, unknown])).toEqual({ retried: [failedId], notRetryable: [sentId, unknown] });
    expect(await finished(failedId)).toMatchObject({ status: 'sent', attempts: MAX_ATTEMPTS + 3, priorAttempts: MAX_ATTEMPTS, lastError: null, messageId: cloudMessageIdFor(to) });
    expect(callsTo(to)).toHaveLength(MAX_ATTEMPTS + 3);
    expect(await rowOf(sentId)).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('cancels a send under way only once its lease has ended, and a cancelled send can be retried', async () => {
    const id = await sendWithoutJob();
    // A worker holds it: WhatsApp may be accepting it this moment.
    expect(await app.deps.templateSendStore.claim(id, 60_000)).toMatchObject({ id, attempts: 1 });
    await expect(service().cancel(id, 'wrong template')).rejects.toMatchObject({ status: 409, publicMessage: expect.stringContaining('under way') });
    expect(await rowOf(id)).toMatchObject({ status: 'queued' });

    // Its worker froze past the lease: the cancel stands.
    await app.deps.db.$executeRaw`UPDATE template_sends SET lease_until = now() - interval '1 second' WHERE id = ${id}::uuid`;
    expect(await service().cancel(id, 'wrong template')).toMatchObject({ id, status: 'cancelled', cancelReason: 'wrong template' });

    expect(await service().retry([id])).toEqual({ retried: [id], notRetryable: [] });
    expect(await finished(id)).toMatchObject({ status: 'sent', attempts: 2, priorAttempts: 1, cancelReason: null });
  });

  it('cancels a queued send waiting out a retry, which is then never sent, and a failed one', async () => {
    const waitingTo = freshNumber();
    script.set(waitingTo, serviceUnavailable({ 'retry-after': '1' }));
    const waitingId = await queueSend({ to: waitingTo, template });
    await eventually(async () => ((await jobStateOf(waitingId)) === 'delayed' ? true : undefined));
    expect(await service().cancel(waitingId, 'flow stopped')).toMatchObject({ status: 'cancelled' });

    const refusedTo = freshNumber();
    script.set(refusedTo, templateMissing);
    const failedId = await queueSend({ to: refusedTo, template });
    await finished(failedId);
    expect(await service().cancel(failedId, 'template retired')).toMatchObject({ status: 'cancelled', cancelReason: 'template retired', attempts: 1 });

    // The job comes back once its delay is over, and finds nothing to send.
    expect(await finished(waitingId)).toMatchObject({ status: 'cancelled', attempts: 1 });
    expect(callsTo(waitingTo)).toHaveLength(1);
  });

  it('refuses to cancel a send that went (409), or one that does not exist (404)', async () => {
    const sentId = await queueSend({ to: freshNumber(), template });
    await finished(sentId);
    await expect(service().cancel(sentId, 'too late')).rejects.toMatchObject({ status: 409, publicMessage: expect.stringContaining('sent') });
    await expect(service().cancel(randomUUID(), 'no such send')).rejects.toMatchObject({ status: 404 });
    expect(await rowOf(sentId)).toMatchObject({ status: 'sent', cancelReason: null });
  });
});

describe('GET /openapi.json', () => {
  it('documents queueing a template send and reading it back', async () => {
    const { paths } = (await app.http.get('/openapi.json')).body as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>> };
    const queue = paths[SENDS]!.post!;
    expect(queue.operationId).toBe('queueWhatsappTemplate');
    expect(Object.keys(queue.responses)).toEqual(expect.arrayContaining(['202', '200', '400', '401', '422', '503']));
    expect(queue.responses['202']).toMatchObject({ headers: { Location: expect.anything() } });
    const read = paths[`${SENDS}/{id}`]!.get!;
    expect(read.operationId).toBe('getWhatsappTemplateSend');
    expect(Object.keys(read.responses)).toEqual(expect.arrayContaining(['200', '401', '404']));
  });
});
