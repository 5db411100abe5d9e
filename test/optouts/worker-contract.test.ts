import { eventually, optoutWebhook, settledOptout, startTestApp, type TestApp } from '../helpers/app';
import { DATA_ELEMENTS_ROUTE, fakeDataElements, refusedValues } from '../helpers/fake-dhis2';
import {
  CONTACTS_ROUTE,
  OPENHIM_ROUTE,
  openhimPartnerEnv,
  PARTNER_SECRETS,
  startFakePartner,
  type FakePartner,
  type ReceivedRequest,
} from '../helpers/fake-partner';

/** The contract's rules on what the worker sends and what GET answers after it ran (CONTRACT.md, "Opt-outs"). */

const contactQuery = (request: ReceivedRequest) => new URL(request.url, 'http://x').searchParams.get('uuid') ?? '';

/** A fake RapidPro that answers each contact's look-up with the results set for it (none by default). */
function fakeRapidPro(partner: FakePartner): Map<string, object[]> {
  const resultsByContact = new Map<string, object[]>();
  partner.on(CONTACTS_ROUTE, (request) => ({
    status: 200,
    body: { next: null, previous: null, results: resultsByContact.get(contactQuery(request)) ?? [] },
  }));
  return resultsByContact;
}

async function send(app: TestApp, body: ReturnType<typeof optoutWebhook>): Promise<string> {
  const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
  expect(response.status).toBe(202);
  return response.body.id as string;
}

describe('opt-out worker, contract rules (OpenHIM)', () => {
  let app: TestApp;
  let partner: FakePartner;
  let rapidpro: Map<string, object[]>;
  const rejectedContacts = new Set<string>();

  beforeAll(async () => {
    partner = await startFakePartner();
    rapidpro = fakeRapidPro(partner);
    partner.on(OPENHIM_ROUTE, (request) =>
      rejectedContacts.has((request.body as { sid: string }).sid) ? { status: 400, body: { error: 'bad faccode' } } : { status: 202, body: { status: 'ok' } },
    );
    app = await startTestApp({ role: 'all', env: { ...openhimPartnerEnv(partner), OPTOUT_BACKOFF_MS: '20' } });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  const submissionFor = (contactUuid: string) =>
    partner.received(OPENHIM_ROUTE).find((request) => (request.body as { sid: string }).sid === contactUuid)?.body;
  const lookupsOf = (contactUuid: string) => partner.received(CONTACTS_ROUTE).filter((request) => contactQuery(request) === contactUuid);

  it("merges the webhook's contact.fields over RapidPro's, field by field, when RapidPro is asked too", async () => {
    // No URN in the webhook: its fields alone are not enough, so RapidPro is asked as well.
    const body = optoutWebhook({ urn: null, fields: { facility_code: '999999' } });
    rapidpro.set(body.contact.uuid, [
      { uuid: body.contact.uuid, urns: ['tel:+27820001001'], fields: { facility_code: '123456', registered_by: '+27820001002' } },
    ]);
    const id = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted' });
    expect(lookupsOf(body.contact.uuid)).toHaveLength(1);
    expect(submissionFor(body.contact.uuid)).toMatchObject({ faccode: '999999', dmsisdn: '+27820001002', cmsisdn: '+27820001001' });
  });

  describe('the reason, as flow authors name it', () => {
    const unmappedWarnings = (id: string) =>
      app.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.optoutId === id && /maps to no NurseConnect reason/.test(String(line.msg)));

    it.each([
      ['Job Change', 7],
      ['not useful', 4],
      ['Number owner change', 8],
      ['job-change', 7],
      ['unknown', 6],
    ])('sends category %p as optoutreason %i, and logs no warning', async (category, code) => {
      const body = optoutWebhook({ urn: 'tel:+27820001007', fields: { facility_code: '123456' }, category });
      const id = await send(app, body);
      expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted' });
      expect(submissionFor(body.contact.uuid)).toMatchObject({ optoutreason: code });
      expect(unmappedWarnings(id)).toEqual([]);
    });

    it('sends a category it has no code for as 6 (unknown), and logs a warning naming the opt-out and the reason', async () => {
      const body = optoutWebhook({ urn: 'tel:+27820001007', fields: { facility_code: '123456' }, category: 'Moved Away' });
      body.results.optout_reason.value = 'gone';
      const id = await send(app, body);
      expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted' });
      expect(submissionFor(body.contact.uuid)).toMatchObject({ optoutreason: 6 });
      expect(unmappedWarnings(id)).toEqual([expect.objectContaining({ level: 'warn', optoutId: id, reason: 'Moved Away' })]);
    });

    it('masks a phone number the reason holds in that warning', async () => {
      const body = optoutWebhook({ urn: 'tel:+27820001007', fields: { facility_code: '123456' }, category: 'new number 082 000 1003' });
      body.results.optout_reason.value = 'changed';
      const id = await send(app, body);
      expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted' });
      const [warning] = unmappedWarnings(id);
      expect(warning!.reason).toMatch(/^new number 08200\*+03$/);
    });
  });

  it("takes RapidPro's first result when several come back", async () => {
    const body = optoutWebhook({ urn: null });
    rapidpro.set(body.contact.uuid, [
      { uuid: body.contact.uuid, urns: ['tel:+27820001011'], fields: { facility_code: '111111' } },
      { uuid: body.contact.uuid, urns: ['tel:+27820001022'], fields: { facility_code: '222222' } },
    ]);
    const id = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted' });
    expect(submissionFor(body.contact.uuid)).toMatchObject({ faccode: '111111', cmsisdn: '+27820001011' });
  });

  describe('GET /api/v1/optouts/:id after the worker ran', () => {
    /** Sends the webhook, waits for the worker, and answers the GET of the opt-out with the fields every answer shares. */
    const settledRecord = async (body: ReturnType<typeof optoutWebhook>) => {
      const id = await send(app, body);
      const row = await settledOptout(app, id);
      const response = await app.http.get(`/api/v1/optouts/${id}`).set('Authorization', `Token ${app.token}`);
      expect(response.status).toBe(200);
      const shared = { id, contact_id: body.contact.uuid, attempts: 1, created_at: row.createdAt.toISOString(), updated_at: row.updatedAt.toISOString() };
      return { record: response.body as Record<string, unknown>, row, shared };
    };

    // toEqual on the whole body: the contract's keys exactly, none missing and none more.
    it('answers a submitted opt-out with its submission time and no error', async () => {
      const { record, row, shared } = await settledRecord(optoutWebhook({ urn: 'tel:+27820001007', fields: { facility_code: '123456' } }));
      expect(record).toEqual({ ...shared, status: 'submitted', last_error: null, submitted_at: row.submittedAt!.toISOString() });
    });

    it('answers a failed opt-out with its last error and no submission time', async () => {
      const body = optoutWebhook({ urn: 'tel:+27820001008', fields: { facility_code: '123456' } });
      rejectedContacts.add(body.contact.uuid);
      const { record, shared } = await settledRecord(body);
      expect(record).toEqual({ ...shared, status: 'failed', last_error: expect.stringMatching(/openhim answered HTTP 400.*bad faccode/), submitted_at: null });
    });
  });
});

describe('opt-out worker, DHIS2 tracker with a user name and password, and org unit codes', () => {
  let app: TestApp;
  let partner: FakePartner;
  let rapidpro: Map<string, object[]>;

  beforeAll(async () => {
    partner = await startFakePartner();
    rapidpro = fakeRapidPro(partner);
    partner.on('POST /api/tracker', { status: 200, body: { status: 'OK', validationReport: { errorReports: [] }, stats: { created: 1 } } });
    app = await startTestApp({
      role: 'all',
      env: {
        RAPIDPRO_URL: partner.url,
        RAPIDPRO_TOKEN: PARTNER_SECRETS.rapidproToken,
        DHIS2_MODE: 'tracker',
        DHIS2_URL: partner.url,
        DHIS2_USERNAME: PARTNER_SECRETS.dhis2Username,
        DHIS2_PASSWORD: PARTNER_SECRETS.dhis2Password,
        DHIS2_PROGRAM: 'IpHINAT79UW',
        DHIS2_PROGRAM_STAGE: 'A03MvHHogjR',
        DHIS2_ORG_UNIT_ID_SCHEME: 'CODE',
      },
    });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  it('sends HTTP Basic auth, and facility codes as org unit codes when DHIS2_ORG_UNIT_ID_SCHEME=CODE', async () => {
    const body = optoutWebhook();
    rapidpro.set(body.contact.uuid, [{ uuid: body.contact.uuid, urns: ['tel:+27820001001'], fields: { facility_code: '123456' } }]);
    const id = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted' });
    const [request] = partner.received('POST /api/tracker');
    const credentials = Buffer.from(`${PARTNER_SECRETS.dhis2Username}:${PARTNER_SECRETS.dhis2Password}`).toString('base64');
    expect(request!.headers.authorization).toBe(`Basic ${credentials}`);
    expect(request!.url).toBe('/api/tracker?async=false&importStrategy=CREATE_AND_UPDATE&orgUnitIdScheme=CODE');
    expect((request!.body as { events: Array<{ orgUnit: string }> }).events[0]!.orgUnit).toBe('123456');
  });
});

describe('opt-out worker without RapidPro settings, with swt configured (OpenHIM)', () => {
  let app: TestApp;
  let partner: FakePartner;

  beforeAll(async () => {
    partner = await startFakePartner();
    partner.on(OPENHIM_ROUTE, { status: 202, body: { status: 'ok' } });
    const { RAPIDPRO_URL: _url, RAPIDPRO_TOKEN: _token, ...openhim } = openhimPartnerEnv(partner);
    app = await startTestApp({ role: 'all', env: { ...openhim, OPENHIM_SWT_WHATSAPP: '1', OPENHIM_SWT_SMS: '3', OPTOUT_BACKOFF_MS: '20' } });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  const submissionFor = (contactUuid: string) =>
    partner.received(OPENHIM_ROUTE).find((request) => (request.body as { sid: string }).sid === contactUuid)?.body;

  it('says once at start-up that opt-outs without contact.fields wait', () => {
    expect(app.logs.filter((line) => /RAPIDPRO_URL\/RAPIDPRO_TOKEN are unset: opt-outs without contact\.fields .*wait/.test(line))).toHaveLength(1);
  });

  it.each([
    ['whatsapp:27820001001', 'OPENHIM_SWT_WHATSAPP', 1],
    ['tel:+27820001001', 'OPENHIM_SWT_SMS', 3],
  ])('submits an opt-out that carries its fields, over %s with swt from %s', async (urn, _variable, swt) => {
    const body = optoutWebhook({ urn, fields: { facility_code: '123456' } });
    const id = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted', attempts: 1 });
    expect(submissionFor(body.contact.uuid)).toMatchObject({ swt, cmsisdn: '+27820001001' });
  });

  it('keeps an opt-out that needs RapidPro queued, with no attempt, trying again and warning which', async () => {
    const body = optoutWebhook();
    const id = await send(app, body);
    const warnings = () => app.logs.filter((line) => line.includes(id) && line.includes('RAPIDPRO_URL/RAPIDPRO_TOKEN are unset'));
    // Looked at again and again (every ten backoffs), never failed.
    await eventually(async () => (warnings().length >= 2 ? true : undefined));
    expect(JSON.parse(warnings()[0]!)).toMatchObject({ level: 'warn', optoutId: id });
    expect(await app.deps.db.optout.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'queued', attempts: 0, lastError: null });
    expect(submissionFor(body.contact.uuid)).toBeUndefined();
    expect(partner.received(CONTACTS_ROUTE)).toEqual([]);
  });
});

describe('opt-out worker, DHIS2 tracker: each value in its data element\'s value type', () => {
  let app: TestApp;
  let partner: FakePartner;
  // Program stage data elements of these types, as DHIS2's metadata lists them.
  const valueTypes = { a3kGcGDCuk6: 'TEXT', bx6fsa0t90x: 'DATE', cYGaxwK615G: 'DATETIME', dYGaxwK615G: 'TEXT', eYGaxwK615G: 'INTEGER_POSITIVE' };

  beforeAll(async () => {
    partner = await startFakePartner();
    fakeDataElements(partner, valueTypes);
    partner.on('POST /api/tracker', (request) => refusedValues(request, valueTypes) ?? { status: 200, body: { status: 'OK', stats: { created: 1 } } });
    app = await startTestApp({
      role: 'all',
      env: {
        DHIS2_MODE: 'tracker',
        DHIS2_URL: partner.url,
        DHIS2_TOKEN: PARTNER_SECRETS.dhis2Token,
        DHIS2_PROGRAM: 'IpHINAT79UW',
        DHIS2_PROGRAM_STAGE: 'A03MvHHogjR',
        DHIS2_ORG_UNIT: 'DiszpKrYNg8',
        DHIS2_DATA_ELEMENTS: JSON.stringify({
          contact_uuid: 'a3kGcGDCuk6',
          opt_out_date: 'bx6fsa0t90x',
          registered_at: 'cYGaxwK615G',
          optout_reason: 'dYGaxwK615G',
          optout_reason_code: 'eYGaxwK615G',
        }),
        OPTOUT_BACKOFF_MS: '20',
      },
    });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  const eventFor = (contactUuid: string) =>
    partner
      .received('POST /api/tracker')
      .map((request) => (request.body as { events: Array<{ dataValues: Array<{ dataElement: string; value: string }> }> }).events[0]!)
      .find((event) => event.dataValues[0]?.value === contactUuid);

  // First in this app: the metadata is asked (and refused) before anything was cached.
  it('retries when the metadata query answers 503, then writes DATE as yyyy-MM-dd and DATETIME as ISO 8601', async () => {
    partner.queue(DATA_ELEMENTS_ROUTE, { status: 503, body: { httpStatus: 'Service Unavailable', httpStatusCode: 503, status: 'ERROR' } });
    const fields = { opt_out_date: '2026-11-20T08:00:05+02:00', registered_at: '2026-01-02T03:04:05.678Z' };
    const body = optoutWebhook({ urn: 'tel:+27820001007', fields, category: 'Job Change' });
    const id = await send(app, body);
    expect(await settledOptout(app, id)).toMatchObject({ status: 'submitted', attempts: 2 });
    const [first] = await app.deps.optoutStore.attemptsOf(id);
    expect(first).toMatchObject({ outcome: 'transient', httpStatus: 503, error: expect.stringMatching(/data element types: dhis2 answered HTTP 503/) });
    const [metadata] = partner.received(DATA_ELEMENTS_ROUTE);
    expect(metadata!.headers.authorization).toBe(`ApiToken ${PARTNER_SECRETS.dhis2Token}`);
    expect(new URL(metadata!.url, 'http://x').searchParams.get('fields')).toBe('id,valueType');
    expect(eventFor(body.contact.uuid)!.dataValues).toEqual([
      { dataElement: 'a3kGcGDCuk6', value: body.contact.uuid },
      { dataElement: 'bx6fsa0t90x', value: '2026-11-20' },
      { dataElement: 'cYGaxwK615G', value: '2026-01-02T03:04:05.678Z' },
      { dataElement: 'dYGaxwK615G', value: 'job_change' },
      { dataElement: 'eYGaxwK615G', value: '7' },
    ]);
  });

  it('asks the metadata once for the process, not per opt-out', async () => {
    const before = partner.received(DATA_ELEMENTS_ROUTE).length;
    const body = optoutWebhook({ urn: 'tel:+27820001007', fields: { ward: 'A' } });
    expect(await settledOptout(app, await send(app, body))).toMatchObject({ status: 'submitted', attempts: 1 });
    expect(eventFor(body.contact.uuid)!.dataValues[1]).toEqual({ dataElement: 'bx6fsa0t90x', value: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) });
    expect(partner.received(DATA_ELEMENTS_ROUTE)).toHaveLength(before);
  });

  it('fails an opt-out at once whose value cannot be written in its type, naming the data element', async () => {
    const body = optoutWebhook({ urn: 'tel:+27820001007', fields: { registered_at: 'last Tuesday' } });
    const id = await send(app, body);
    const row = await settledOptout(app, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1, lastError: 'the registered_at value cannot be written as DATETIME for data element cYGaxwK615G' });
    expect(eventFor(body.contact.uuid)).toBeUndefined();
  });
});
