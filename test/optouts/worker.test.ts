import { randomUUID } from 'node:crypto';
import { jobIdFor } from '../../src/optouts/queue';
import { eventUidFor } from '../../src/partners/nurseconnect-payloads';
import { eventually, optoutWebhook, settledOptout, startTestApp, type TestApp } from '../helpers/app';
import { openhimPartnerEnv, Script, startFakePartner, type FakeAnswer, type FakePartner, type ReceivedRequest } from '../helpers/fake-partner';
import { closedPortUrl } from '../whatsapp/support';
import { fakeDataElements } from '../helpers/fake-dhis2';

const OPENHIM_ROUTE = 'POST /ws/rest/v1/nc/optout';
const CONTACTS_ROUTE = 'GET /api/v2/contacts.json';
const TRACKER_ROUTE = 'POST /api/tracker';

const contactQuery = (request: ReceivedRequest) => new URL(request.url, 'http://x').searchParams.get('uuid') ?? '';
const missingContacts = new Set<string>();

function fakeRapidPro(partner: FakePartner): void {
  partner.on(CONTACTS_ROUTE, (request) => {
    const uuid = contactQuery(request);
    if (missingContacts.has(uuid)) return { status: 200, body: { next: null, previous: null, results: [] } };
    return {
      status: 200,
      body: {
        next: null,
        previous: null,
        results: [
          {
            uuid,
            name: 'Jane',
            urns: ['tel:+27820001001', 'whatsapp:27820001001'],
            fields: { facility_code: '123456', registered_by: '+27820001002' },
          },
        ],
      },
    };
  });
}

/** Waits until BullMQ has finished the opt-out's job: no try of it is running or still to come. */
async function jobFinished(app: TestApp, optoutId: string): Promise<void> {
  await eventually(async () => {
    const state = await (await app.deps.optoutQueue.bullQueue.getJob(jobIdFor(optoutId)))?.getState();
    return state === 'completed' || state === 'failed' ? true : undefined;
  });
}

async function send(app: TestApp, body = optoutWebhook()) {
  const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
  expect(response.status).toBe(202);
  return { id: response.body.id as string, contactUuid: body.contact.uuid };
}

describe('opt-out worker through OpenHIM', () => {
  let app: TestApp;
  let partner: FakePartner;
  const script = new Script();

  beforeAll(async () => {
    partner = await startFakePartner();
    fakeRapidPro(partner);
    partner.on(OPENHIM_ROUTE, (request) => script.next((request.body as { sid: string }).sid, { status: 202, body: { status: 'ok' } }));
    app = await startTestApp({
      role: 'all',
      env: {
        ...openhimPartnerEnv(partner),
        OPTOUT_BACKOFF_MS: '20',
        OPTOUT_MAX_ATTEMPTS: '4',
        PARTNER_TIMEOUT_MS: '2000',
      },
    });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  const openhimRequestsFor = (contactUuid: string) =>
    partner.received(OPENHIM_ROUTE).filter((request) => (request.body as { sid: string }).sid === contactUuid);

  it('looks the contact up in RapidPro and submits the NurseConnect body', async () => {
    const { id, contactUuid } = await send(app);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'submitted', attempts: 1, lastError: null });
    expect(row.submittedAt).toBeInstanceOf(Date);

    const lookup = partner.received(CONTACTS_ROUTE).find((request) => contactQuery(request) === contactUuid)!;
    expect(lookup.headers.authorization).toBe('Token rapidpro-secret');
    const [submission] = openhimRequestsFor(contactUuid);
    expect(submission!.headers.authorization).toBe(`Basic ${Buffer.from('companion:openhim-secret').toString('base64')}`);
    expect(submission!.body).toEqual({
      mha: 1,
      swt: 7,
      type: 8,
      sid: contactUuid,
      eid: id,
      cmsisdn: '+27820001001',
      dmsisdn: '+27820001002',
      faccode: '123456',
      id: '27820001001^^^ZAF^TEL',
      optoutreason: 7,
      encdate: expect.stringMatching(/^\d{14}$/),
    });
  });

  it('skips the RapidPro look-up when the webhook carries the contact fields', async () => {
    const body = optoutWebhook({ urn: 'tel:+27820001007', fields: { facility_code: '999999' } });
    const { id, contactUuid } = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted' });
    expect(partner.received(CONTACTS_ROUTE).filter((request) => contactQuery(request) === contactUuid)).toHaveLength(0);
    expect(openhimRequestsFor(contactUuid)[0]!.body).toMatchObject({ swt: 1, cmsisdn: '+27820001007', faccode: '999999' });
  });

  it('reads a registered_by written without its country code in DEFAULT_COUNTRY (ZA)', async () => {
    const body = optoutWebhook({ urn: 'whatsapp:27820001007', fields: { facility_code: '999999', registered_by: '082 000 1002' } });
    const { id, contactUuid } = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted' });
    expect(openhimRequestsFor(contactUuid)[0]!.body).toMatchObject({ cmsisdn: '+27820001007', dmsisdn: '+27820001002' });
  });

  it('fails at once, naming registered_by and why, when it holds a number valid in no region', async () => {
    const body = optoutWebhook({ urn: 'whatsapp:27820001007', fields: { facility_code: '999999', registered_by: '+999 123' } });
    const { id, contactUuid } = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1, lastError: 'contact field registered_by is not a valid phone number in any region' });
    expect(openhimRequestsFor(contactUuid)).toHaveLength(0);
  });

  it('retries 503 twice and ends submitted with 3 attempts recorded', async () => {
    const body = optoutWebhook();
    script.set(body.contact.uuid, { status: 503, body: { error: 'busy' } }, { status: 503, body: { error: 'busy' } });
    const { id } = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted', attempts: 3, lastError: null });
    const attempts = await app.deps.optoutStore.attemptsOf(id);
    expect(attempts.map((attempt) => [attempt.number, attempt.httpStatus, attempt.outcome])).toEqual([
      [1, 503, 'transient'],
      [2, 503, 'transient'],
      [3, 202, 'success'],
    ]);
    expect(attempts[0]!.response).toBe('{"error":"busy"}');
    expect(attempts[0]!.error).toMatch(/HTTP 503/);
    // The same eid every time: the upstream can tell a retry from a new opt-out.
    expect(new Set(openhimRequestsFor(body.contact.uuid).map((request) => (request.body as { eid: string }).eid))).toEqual(new Set([id]));
  });

  // The 503 pauses nothing else, so only the opt-out's own retry delay can hold its second try back.
  it.each([
    [503, 2, 'maintenance'],
    [429, 1, 'slow down'],
  ])('waits as long as a %i Retry-After of %i s asks, however short OPTOUT_BACKOFF_MS is', async (status, seconds, error) => {
    const body = optoutWebhook();
    script.set(body.contact.uuid, { status, headers: { 'retry-after': String(seconds) }, body: { error } });
    const { id } = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted', attempts: 2 });
    const [first, second] = openhimRequestsFor(body.contact.uuid);
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(seconds * 1000 - 100);
  });

  it('records when each attempt started and how long it took', async () => {
    const body = optoutWebhook({ urn: 'tel:+27820001007', fields: { facility_code: '123456' } });
    script.set(body.contact.uuid, { status: 202, body: { status: 'ok' }, delayMs: 300 });
    const posted = Date.now();
    const { id } = await send(app, body);
    const row = await settledOptout(app, id);
    const settled = Date.now();
    expect(row).toMatchObject({ status: 'submitted', attempts: 1 });
    const [attempt] = await app.deps.optoutStore.attemptsOf(id);
    const [request] = openhimRequestsFor(body.contact.uuid);
    // Started after the webhook came in, and before OpenHIM received the submission.
    expect(attempt!.startedAt.getTime()).toBeGreaterThanOrEqual(posted);
    expect(attempt!.startedAt.getTime()).toBeLessThanOrEqual(request!.receivedAt);
    // Covers OpenHIM's delay, and ends before the row was seen settled.
    expect(attempt!.durationMs).toBeGreaterThanOrEqual(300);
    expect(attempt!.startedAt.getTime() + attempt!.durationMs).toBeLessThanOrEqual(settled);
  });

  it('holds back every other opt-out for what a 429 asks, not only the one it answered', async () => {
    const limited = optoutWebhook();
    script.set(limited.contact.uuid, { status: 429, headers: { 'retry-after': '1' }, body: { error: 'slow down' } });
    const { id } = await send(app, limited);
    await eventually(async () => ((await app.deps.db.optout.findUnique({ where: { id } }))?.attempts === 1 ? true : undefined), 10000, 10);
    // The worker pauses the queue right after recording the attempt: wait until BullMQ's limiter in Redis says so.
    await eventually(async () => ((await app.deps.optoutQueue.bullQueue.getRateLimitTtl(Number.MAX_SAFE_INTEGER)) > 0 ? true : undefined), 10000, 10);
    const other = await send(app);
    expect(await settledOptout(app, other.id)).toMatchObject({ status: 'submitted', attempts: 1 });
    const [tooMany] = openhimRequestsFor(limited.contact.uuid);
    const [submission] = openhimRequestsFor(other.contactUuid);
    expect(submission!.receivedAt - tooMany!.receivedAt).toBeGreaterThanOrEqual(1000);
  });

  it.each(['submitted', 'failed'] as const)('skips a %s opt-out whose job comes round, sending nothing', async (status) => {
    const contactUuid = randomUUID();
    const id = randomUUID();
    await app.deps.db.optout.create({
      data: { id, contactUuid, contactUrn: 'tel:+27820001001', contactFields: { facility_code: '123456' }, status, attempts: 1 },
    });
    const before = await app.deps.db.optout.findUniqueOrThrow({ where: { id } });
    await app.deps.optoutQueue.ensureQueued(id);
    await jobFinished(app, id);
    expect(openhimRequestsFor(contactUuid)).toHaveLength(0);
    expect(partner.received(CONTACTS_ROUTE).filter((request) => contactQuery(request) === contactUuid)).toHaveLength(0);
    expect(await app.deps.db.optout.findUniqueOrThrow({ where: { id } })).toEqual(before);
    expect(await app.deps.optoutStore.attemptsOf(id)).toEqual([]);
  });

  it('submits an opt-out whose job an earlier release queued, naming it optoutId', async () => {
    const contactUuid = randomUUID();
    const id = randomUUID();
    await app.deps.db.optout.create({ data: { id, contactUuid, contactUrn: 'tel:+27820001001', contactFields: { facility_code: '123456' } } });
    await app.deps.optoutQueue.bullQueue.add('submit', { optoutId: id } as never, { jobId: jobIdFor(id) });
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted', attempts: 1 });
  });

  it('fails at once on a 400, after 1 attempt', async () => {
    const body = optoutWebhook();
    script.set(body.contact.uuid, { status: 400, body: { error: 'bad faccode' } });
    const { id } = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1 });
    expect(row.lastError).toMatch(/openhim answered HTTP 400.*bad faccode/);
    expect(openhimRequestsFor(body.contact.uuid)).toHaveLength(1);
  });

  it('fails with a clear last_error when RapidPro does not know the contact', async () => {
    const body = optoutWebhook();
    missingContacts.add(body.contact.uuid);
    const { id } = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1, lastError: `contact ${body.contact.uuid} was not found in RapidPro` });
    expect(openhimRequestsFor(body.contact.uuid)).toHaveLength(0);
  });

  it('gives up after OPTOUT_MAX_ATTEMPTS transient failures', async () => {
    const body = optoutWebhook();
    script.set(body.contact.uuid, ...Array.from({ length: 10 }, () => ({ status: 502 })));
    const { id } = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 4 });
    expect(row.lastError).toMatch(/^gave up after 4 attempts: openhim answered HTTP 502/);
  });

  it('submits a webhook delivered twice only once', async () => {
    const body = optoutWebhook();
    const key = randomUUID();
    const post = () => app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).set('Idempotency-Key', key).send(body);
    const [first, second] = await Promise.all([post(), post()]);
    expect([first.status, second.status].sort()).toEqual([200, 202]);
    await settledOptout(app, first.body.id);
    const third = await post();
    expect(third.status).toBe(200);
    expect(third.body).toMatchObject({ id: first.body.id, status: 'submitted' });
    // Its job is done: no try of it is running or waiting, so any second submission would have been made.
    await jobFinished(app, first.body.id);
    expect(await app.deps.optoutStore.attemptsOf(first.body.id)).toHaveLength(1);
    expect(openhimRequestsFor(body.contact.uuid)).toHaveLength(1);
    expect(await app.deps.db.optout.count({ where: { contactUuid: body.contact.uuid } })).toBe(1);
  });
});

describe('opt-out worker while OpenHIM refuses connections', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({
      role: 'all',
      env: { ...openhimPartnerEnv({ url: await closedPortUrl() }), OPTOUT_BACKOFF_MS: '20', OPTOUT_MAX_ATTEMPTS: '3' },
    });
  });
  afterAll(() => app.stop());

  it('retries a refused connection as transient until OPTOUT_MAX_ATTEMPTS', async () => {
    // The webhook carries the contact, so that RapidPro (refusing too) is not asked.
    const { id } = await send(app, optoutWebhook({ urn: 'tel:+27820001001', fields: { facility_code: '123456' } }));
    const unreachable = 'openhim unreachable (ECONNREFUSED)';
    expect(await settledOptout(app, id)).toMatchObject({ status: 'failed', attempts: 3, lastError: `gave up after 3 attempts: ${unreachable}` });
    const attempts = await app.deps.optoutStore.attemptsOf(id);
    expect(attempts.map((attempt) => [attempt.outcome, attempt.httpStatus, attempt.error?.endsWith(unreachable)])).toEqual(
      Array.from({ length: 3 }, () => ['transient', null, true]),
    );
  });
});

describe('opt-out worker through the DHIS2 tracker API', () => {
  let app: TestApp;
  let partner: FakePartner;
  const script = new Script();
  /** Contacts whose event DHIS2 reports as existing (E1030): their own event, or another one. */
  const alreadyExists = new Map<string, 'own' | 'other'>();
  /** Contacts whose import DHIS2 answers with these error reports, given the event's UID. */
  const errorReportsFor = new Map<string, (eventUid: string) => object[]>();
  const eventOf = (request: ReceivedRequest) => (request.body as { events: Array<Record<string, unknown>> }).events[0]!;

  beforeAll(async () => {
    partner = await startFakePartner();
    fakeRapidPro(partner);
    fakeDataElements(partner, { a3kGcGDCuk6: 'TEXT', bx6fsa0t90x: 'TEXT' });
    partner.on(TRACKER_ROUTE, (request) => {
      const event = eventOf(request);
      const contactUuid = (event.dataValues as Array<{ value: string }>)[0]!.value;
      const reports = errorReportsFor.get(contactUuid);
      if (reports) return { status: 409, body: { status: 'ERROR', validationReport: { errorReports: reports(event.event as string) } } };
      const exists = alreadyExists.get(contactUuid);
      if (exists) {
        const uid = exists === 'own' ? event.event : 'zzzzzzzzzzz';
        return { status: 409, body: { status: 'ERROR', validationReport: { errorReports: [{ errorCode: 'E1030', trackerType: 'EVENT', uid }] } } };
      }
      return script.next(contactUuid, { status: 200, body: { status: 'OK', validationReport: { errorReports: [] }, stats: { created: 1 } } });
    });
    app = await startTestApp({
      role: 'all',
      env: {
        RAPIDPRO_URL: partner.url,
        RAPIDPRO_TOKEN: 'rapidpro-secret',
        DHIS2_MODE: 'tracker',
        DHIS2_URL: partner.url,
        DHIS2_TOKEN: 'd2pat_secret',
        DHIS2_PROGRAM: 'IpHINAT79UW',
        DHIS2_PROGRAM_STAGE: 'A03MvHHogjR',
        DHIS2_DATA_ELEMENTS: JSON.stringify({ contact_uuid: 'a3kGcGDCuk6', optout_reason: 'bx6fsa0t90x' }),
        DHIS2_ORG_UNIT: 'DiszpKrYNg8',
        OPTOUT_BACKOFF_MS: '20',
        OPTOUT_MAX_ATTEMPTS: '3',
      },
    });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  const trackerRequestsFor = (contactUuid: string) =>
    partner.received(TRACKER_ROUTE).filter((request) => (eventOf(request).dataValues as Array<{ value: string }>)[0]?.value === contactUuid);

  it('imports one event with the derived UID, synchronously, with the API token', async () => {
    const { id, contactUuid } = await send(app);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted', attempts: 1 });
    const [request] = trackerRequestsFor(contactUuid);
    expect(request!.url).toBe('/api/tracker?async=false&importStrategy=CREATE_AND_UPDATE');
    expect(request!.headers.authorization).toBe('ApiToken d2pat_secret');
    expect(request!.body).toEqual({
      events: [
        {
          event: eventUidFor(id),
          program: 'IpHINAT79UW',
          programStage: 'A03MvHHogjR',
          orgUnit: '123456',
          occurredAt: expect.any(String),
          status: 'COMPLETED',
          dataValues: [
            { dataElement: 'a3kGcGDCuk6', value: contactUuid },
            { dataElement: 'bx6fsa0t90x', value: 'job_change' },
          ],
        },
      ],
    });
  });

  it('does not take a 200 whose import summary says ERROR for a success', async () => {
    const body = optoutWebhook();
    script.set(body.contact.uuid, {
      status: 200,
      body: { status: 'ERROR', validationReport: { errorReports: [{ errorCode: 'E1064', message: 'bad value' }] } },
    });
    const { id } = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row.status).toBe('failed');
    expect(row.lastError).toMatch(/reported an error.*E1064/);
  });

  it('counts E1030 (this event exists already) as a success, but not E1030 for another event', async () => {
    const retried = optoutWebhook();
    const other = optoutWebhook();
    alreadyExists.set(retried.contact.uuid, 'own');
    alreadyExists.set(other.contact.uuid, 'other');
    const [ownRow, otherRow] = await Promise.all([send(app, retried), send(app, other)]).then(([a, b]) =>
      Promise.all([settledOptout(app, a.id), settledOptout(app, b.id)]),
    );
    expect(ownRow).toMatchObject({ status: 'submitted', attempts: 1 });
    expect(otherRow).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('does not count E1030 for this event as a success when DHIS2 reports another error with it', async () => {
    const body = optoutWebhook();
    errorReportsFor.set(body.contact.uuid, (eventUid) => [
      { errorCode: 'E1030', trackerType: 'EVENT', uid: eventUid },
      { errorCode: 'E1064', trackerType: 'EVENT', uid: eventUid, message: 'bad value' },
    ]);
    const { id } = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1, submittedAt: null });
  });

  it('takes a 409 whose import summary says ERROR with no error reports for a failure', async () => {
    const body = optoutWebhook();
    errorReportsFor.set(body.contact.uuid, () => []);
    const { id } = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1, submittedAt: null });
    expect(row.lastError).toMatch(/dhis2 answered HTTP 409/);
  });

  it.each<[string, FakeAnswer]>([
    ['a page that is not an import report (a proxy or sign-on page)', { status: 200, rawBody: '<html><body>Sign in</body></html>', headers: { 'content-type': 'text/html' } }],
    ['an import report that counts the event neither created nor updated', { status: 200, body: { status: 'OK', stats: { created: 0, updated: 0, ignored: 1 } } }],
  ])('does not take a 200 with %s for a submission: it tries again', async (_case, answer) => {
    const body = optoutWebhook();
    script.set(body.contact.uuid, answer);
    const { id } = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'submitted', attempts: 2 });
    const [first] = await app.deps.db.optoutAttempt.findMany({ where: { optoutId: id }, orderBy: { number: 'asc' } });
    expect(first).toMatchObject({ outcome: 'transient', httpStatus: 200, error: expect.stringMatching(/^dhis2 answered 200 but /) });
  });

  it('puts the event in DHIS2_ORG_UNIT when the contact has no facility_code', async () => {
    const body = optoutWebhook({ urn: 'tel:+27820001009', fields: { registered_by: '+27820001002' } });
    const { id, contactUuid } = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted', attempts: 1 });
    const [request, ...others] = trackerRequestsFor(contactUuid);
    expect(others).toEqual([]);
    expect(eventOf(request!).orgUnit).toBe('DiszpKrYNg8');
  });
});
