import nock from 'nock';
import { createLogger } from '../../src/ops/logger';
import { createMetrics } from '../../src/ops/metrics';
import { createDhis2TrackerClient } from '../../src/partners/dhis2';
import { PartnerError } from '../../src/partners/failures';
import { USER_AGENT } from '../../src/partners/http-client';
import { createOpenhimClient } from '../../src/partners/openhim';
import { createRapidProClient } from '../../src/partners/rapidpro';
import { createWhatsappClient } from '../../src/partners/whatsapp';

/**
 * Each partner client's exact requests, and what it makes of its partner's answers as the partner
 * documents them, pinned with nock. Faults, outages and the browser use real local servers instead.
 */

const observers = () => ({ logger: createLogger({ level: 'silent' }), metrics: createMetrics() });
/** Headers every partner request carries; a GET carries no body, so no Content-Type. */
const common = { 'user-agent': USER_AGENT, accept: 'application/json' };

beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect(/127\.0\.0\.1|localhost/);
});
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});
// nock patches node:http for the whole Jest worker; left on, it would carry later test files' requests
// (one fresh connection each, whatever the agent's keep-alive).
afterAll(() => {
  nock.cleanAll();
  nock.enableNetConnect();
  nock.restore();
});

describe('RapidPro contact look-up', () => {
  const RAPIDPRO = 'https://rapidpro.example.org';
  const UUID = '5079a2a5-6f3c-4a3a-9b1a-4a1f0e2b8c11';
  const client = () => createRapidProClient({ url: `${RAPIDPRO}/`, token: 'rp-token', timeoutMs: 2000, ...observers() });
  const lookUp = (answer: object) =>
    nock(RAPIDPRO, { reqheaders: { ...common, authorization: 'Token rp-token' }, badheaders: ['content-type'] })
      .get('/api/v2/contacts.json')
      .query({ uuid: UUID })
      .reply(200, answer);

  it('asks for the contact by UUID with its API token and keeps its URNs and fields', async () => {
    // One contact as RapidPro's API v2 lists it (temba/api/v2/tests/test_contacts.py, ContactsEndpointTest),
    // in the cursor page every list endpoint answers with.
    lookUp({
      next: null,
      previous: null,
      results: [
        {
          uuid: UUID,
          name: 'Don',
          status: 'active',
          language: 'fra',
          urns: ['tel:+250788000004'],
          groups: [{ uuid: 'a1b2c3d4-0000-4000-8000-000000000001', name: 'Customers' }],
          notes: [],
          fields: { nickname: 'Donnie', facility_code: '123456' },
          flow: null,
          created_on: '2026-11-30T08:00:00.000000Z',
          modified_on: '2026-12-01T09:30:00.000000Z',
          last_seen_on: '2020-08-12T13:30:45.123456Z',
          blocked: false,
          stopped: false,
        },
      ],
    });
    expect(await client().getContact(UUID)).toEqual({ uuid: UUID, urns: ['tel:+250788000004'], fields: { nickname: 'Donnie', facility_code: '123456' } });
  });

  it('takes an empty page for a contact RapidPro does not know', async () => {
    lookUp({ next: null, previous: null, results: [] });
    expect(await client().getContact(UUID)).toBeNull();
  });
});

describe('DHIS2 tracker import and data element query', () => {
  const DHIS2 = 'https://dhis2.example.org';
  const EVENT = 'gTZBPT3Jq39';
  const payload = {
    events: [
      {
        event: EVENT,
        program: 'eBAyeGv0exc',
        programStage: 'Zj7UnCAulEk',
        orgUnit: 'DiszpKrYNg8',
        occurredAt: '2026-12-01',
        status: 'COMPLETED',
        dataValues: [{ dataElement: 'bx6fsa0t90x', value: '2026-12-01' }],
      },
    ],
  };
  // A synchronous import's report (dhis2-docs, developer/web-api/tracker.md "Import summary response";
  // dhis2-core TrackerImportControllerTest.shouldImportSync for its top level).
  const report = {
    status: 'OK',
    validationReport: { errorReports: [], warningReports: [] },
    stats: { created: 1, updated: 0, deleted: 0, ignored: 0, total: 1 },
    bundleReport: {
      typeReportMap: {
        EVENT: {
          trackerType: 'EVENT',
          stats: { created: 1, updated: 0, deleted: 0, ignored: 0, total: 1 },
          objectReports: [{ trackerType: 'EVENT', uid: EVENT, errorReports: [] }],
        },
      },
    },
  };

  it('posts the payload as it is to the synchronous tracker importer, with its personal access token', async () => {
    nock(DHIS2, { reqheaders: { ...common, authorization: 'ApiToken d2pat_contract', 'content-type': 'application/json' } })
      .post('/api/tracker', payload)
      .query({ async: 'false', importStrategy: 'CREATE_AND_UPDATE', orgUnitIdScheme: 'CODE' })
      .reply(200, report);
    const dhis2 = createDhis2TrackerClient({ url: DHIS2, token: 'd2pat_contract', orgUnitIdScheme: 'CODE', timeoutMs: 2000, ...observers() });
    expect(await dhis2.importTracker(payload, EVENT)).toMatchObject({ status: 200, body: report });
  });

  it('signs in with Basic when given a user, and names org units by UID unless told otherwise', async () => {
    const basic = `Basic ${Buffer.from('companion:district').toString('base64')}`;
    nock(DHIS2, { reqheaders: { authorization: basic } })
      .post('/api/tracker', payload)
      .query({ async: 'false', importStrategy: 'CREATE_AND_UPDATE' })
      .reply(200, report);
    const dhis2 = createDhis2TrackerClient({ url: DHIS2, username: 'companion', password: 'district', orgUnitIdScheme: 'UID', timeoutMs: 2000, ...observers() });
    expect(await dhis2.importTracker(payload, EVENT)).toMatchObject({ status: 200 });
  });

  it('reads value types from the metadata API with one object filter and no paging', async () => {
    // The metadata API's list with `paging=false`: the objects alone, no pager, only the fields asked for
    // (dhis2-docs, developer/web-api/metadata.md, "Metadata object filter" and "Metadata field filter").
    nock(DHIS2, { reqheaders: { ...common, authorization: 'ApiToken d2pat_contract' }, badheaders: ['content-type'] })
      .get('/api/dataElements')
      .query({ filter: 'id:in:[a3kGcGDCuk6,bx6fsa0t90x]', fields: 'id,valueType', paging: 'false' })
      .reply(200, { dataElements: [{ id: 'bx6fsa0t90x', valueType: 'DATE' }, { id: 'a3kGcGDCuk6', valueType: 'TEXT' }] });
    const dhis2 = createDhis2TrackerClient({ url: DHIS2, token: 'd2pat_contract', orgUnitIdScheme: 'UID', timeoutMs: 2000, ...observers() });
    expect(await dhis2.dataElementTypes(['a3kGcGDCuk6', 'bx6fsa0t90x'])).toEqual(
      new Map([
        ['bx6fsa0t90x', 'DATE'],
        ['a3kGcGDCuk6', 'TEXT'],
      ]),
    );
  });
});

describe('WhatsApp Cloud API messages', () => {
  const GRAPH = 'https://graph.facebook.com';
  const PHONE_NUMBER_ID = '106540352242922';
  const TO = '+27820001001';
  const client = () =>
    createWhatsappClient(
      { api: 'cloud', url: GRAPH, apiVersion: 'v23.0', phoneNumberId: PHONE_NUMBER_ID, token: 'EAAG-contract', timeoutMs: 2000 },
      observers(),
    );
  const send = () =>
    nock(GRAPH, { reqheaders: { ...common, authorization: 'Bearer EAAG-contract', 'content-type': 'application/json' } }).post(
      `/v23.0/${PHONE_NUMBER_ID}/messages`,
      {
        messaging_product: 'whatsapp',
        to: TO,
        type: 'template',
        template: { name: 'appointment_reminder', language: { code: 'en' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'Jane' }] }] },
      },
    );
  const message = { to: TO, name: 'appointment_reminder', language: 'en', params: ['Jane'] };

  it('posts the template message and hands back Meta’s acceptance', async () => {
    // developers.facebook.com/docs/whatsapp/cloud-api/reference/messages, "Response".
    const acceptance = {
      messaging_product: 'whatsapp',
      contacts: [{ input: TO, wa_id: '27820001001' }],
      messages: [{ id: 'wamid.HBgLMjc4MjAwMDEwMDEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA', message_status: 'accepted' }],
    };
    send().reply(200, acceptance);
    expect(await client().sendTemplate(message)).toMatchObject({ kind: 'answered', answer: { status: 200, body: acceptance } });
  });

  it('hands back Meta’s error answer as it came', async () => {
    // developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes: the Graph API error object.
    const refusal = {
      error: {
        message: '(#132001) Template name does not exist in the translation',
        type: 'OAuthException',
        code: 132001,
        error_data: { messaging_product: 'whatsapp', details: 'template name (appointment_reminder) does not exist in en' },
        fbtrace_id: 'AI5Ob3sVb9Kb2Hr3FSqY0aB',
      },
    };
    send().reply(404, refusal);
    expect(await client().sendTemplate(message)).toMatchObject({ kind: 'answered', answer: { status: 404, body: refusal } });
  });
});

describe('OpenHIM (Jembi) NurseConnect opt-out', () => {
  const OPENHIM = 'https://openhim.example.org';
  const message = {
    mha: 1, swt: 7, type: 8, sid: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f', eid: '0196d7d9-6d0c-7fd3-b7a5-a5b1c1d2e3f4',
    cmsisdn: '+27820001001', dmsisdn: '+27820001002', faccode: '123456', id: '27820001001^^^ZAF^TEL', optoutreason: 7, encdate: '20261126101500',
  };
  const client = () => createOpenhimClient({ url: `${OPENHIM}/`, username: 'companion', password: 'jembi', timeoutMs: 2000, ...observers() });
  const post = () =>
    nock(OPENHIM, {
      reqheaders: { ...common, authorization: `Basic ${Buffer.from('companion:jembi').toString('base64')}`, 'content-type': 'application/json' },
    }).post('/ws/rest/v1/nc/optout', message);

  it('posts the message with Basic auth and takes Jembi’s JSON acceptance', async () => {
    // Jembi's answer as praekeltfoundation/ndoh-jsbox test/fixtures.js ("POST Nurse Optouts to Jembi") records it.
    post().reply(200, { success: 'true' }, { 'content-type': 'application/json' });
    expect(await client().submitOptout(message)).toMatchObject({ status: 200, body: { success: 'true' } });
  });

  it('does not take a 2xx page that is not Jembi’s JSON (a proxy’s or sign-on page) for a submission', async () => {
    post().reply(200, '<html><body>Sign in</body></html>', { 'content-type': 'text/html' });
    await expect(client().submitOptout(message)).rejects.toMatchObject({ constructor: PartnerError, kind: 'transient' });
  });
});

describe('Turn (the On-Premises API) contact check and template message', () => {
  const TURN = 'https://whatsapp.turn.io';
  const TO = '+27820001001';
  const client = (contactCheck = true) =>
    createWhatsappClient({ api: 'onprem', url: TURN, namespace: 'c8ae5f90_307a_ca4c_b8f6_d1e2a2573574', token: 'turn-token', timeoutMs: 2000, contactCheck }, observers());
  const headers = { ...common, authorization: 'Bearer turn-token', 'content-type': 'application/json' };
  const contacts = (status: string, waId?: string) =>
    // whatsapp.turn.io/docs/api/contacts: one entry per number asked about, `wa_id` only when it has an account.
    nock(TURN, { reqheaders: headers })
      .post('/v1/contacts', { blocking: 'wait', contacts: [TO] })
      .reply(200, { contacts: [{ input: TO, status, ...(waId ? { wa_id: waId } : {}) }] });
  const messages = (to: string) =>
    nock(TURN, { reqheaders: headers })
      .post('/v1/messages', {
        to,
        type: 'template',
        template: {
          namespace: 'c8ae5f90_307a_ca4c_b8f6_d1e2a2573574',
          name: 'appointment_reminder',
          language: { policy: 'deterministic', code: 'en' },
          components: [{ type: 'body', parameters: [{ type: 'text', text: 'Jane' }] }],
        },
      })
      .reply(201, { messages: [{ id: 'gBEGkYiEB1VXAglK1ZEqA1YKPrU' }] });
  const message = { to: TO, name: 'appointment_reminder', language: 'en', params: ['Jane'] };

  it('sends to the wa_id of a valid contact', async () => {
    contacts('valid', '27820001001');
    messages('27820001001');
    expect(await client().sendTemplate(message)).toMatchObject({ kind: 'answered', answer: { status: 201 } });
  });

  it('sends to the number itself when Turn’s sandbox answers pending', async () => {
    contacts('pending');
    messages(TO);
    expect(await client().sendTemplate(message)).toMatchObject({ kind: 'answered', answer: { status: 201 } });
  });

  it('sends nothing to an invalid contact', async () => {
    contacts('invalid');
    expect(await client().sendTemplate(message)).toMatchObject({ kind: 'not-a-contact' });
  });

  it('asks nothing about the contact when the check is off', async () => {
    messages(TO);
    expect(await client(false).sendTemplate(message)).toMatchObject({ kind: 'answered', answer: { status: 201 } });
  });
});
