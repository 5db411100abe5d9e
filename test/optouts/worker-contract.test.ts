import { optoutWebhook, settledOptout, startTestApp, type TestApp } from '../helpers/app';
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
