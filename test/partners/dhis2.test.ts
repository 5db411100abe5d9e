import { createMetrics } from '../../src/ops/metrics';
import { createDhis2TrackerClient } from '../../src/partners/dhis2';
import { PartnerError } from '../../src/partners/failures';
import { DATA_ELEMENTS_ROUTE, fakeDataElements } from '../helpers/fake-dhis2';
import { PARTNER_SECRETS, startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { captureLogs } from '../helpers/logs';

/** The tracker client's metadata query: what it asks DHIS2, what it keeps, and how its failures count. */

const { logger } = captureLogs();
let partner: FakePartner;

beforeAll(async () => {
  partner = await startFakePartner();
  fakeDataElements(partner, { a3kGcGDCuk6: 'TEXT', bx6fsa0t90x: 'DATE' });
});
afterAll(() => partner.stop());

const client = () =>
  createDhis2TrackerClient({ url: `${partner.url}/`, token: PARTNER_SECRETS.dhis2Token, orgUnitIdScheme: 'UID', timeoutMs: 2000, logger, metrics: createMetrics() });

const askedSince = (before: number) => partner.received(DATA_ELEMENTS_ROUTE).slice(before);

describe('data element value types', () => {
  it('asks DHIS2 once for all the ids, with its object filter, and keeps the answer for the process', async () => {
    const dhis2 = client();
    const before = partner.received(DATA_ELEMENTS_ROUTE).length;
    const [types, again] = await Promise.all([dhis2.dataElementTypes(['a3kGcGDCuk6', 'bx6fsa0t90x']), dhis2.dataElementTypes(['bx6fsa0t90x', 'a3kGcGDCuk6'])]);
    expect(types).toEqual(new Map([['a3kGcGDCuk6', 'TEXT'], ['bx6fsa0t90x', 'DATE']]));
    expect(again).toBe(types);
    expect(await dhis2.dataElementTypes(['a3kGcGDCuk6', 'bx6fsa0t90x'])).toBe(types);
    const [request, ...others] = askedSince(before);
    expect(others).toEqual([]);
    expect(request!.headers.authorization).toBe(`ApiToken ${PARTNER_SECRETS.dhis2Token}`);
    const query = new URL(request!.url, 'http://x').searchParams;
    expect(Object.fromEntries(query)).toEqual({ filter: 'id:in:[a3kGcGDCuk6,bx6fsa0t90x]', fields: 'id,valueType', paging: 'false' });
  });

  it('asks nothing when no data element is mapped', async () => {
    const before = partner.received(DATA_ELEMENTS_ROUTE).length;
    expect(await client().dataElementTypes([])).toEqual(new Map());
    expect(askedSince(before)).toEqual([]);
  });

  it.each([
    ['a 503', { status: 503, body: { httpStatusCode: 503, status: 'ERROR' } }, /reading data element types: dhis2 answered HTTP 503/],
    // A 401 on metadata is retried too: the credentials are fixed in time for a later try (and the import would say so).
    ['a 401', { status: 401, body: { httpStatusCode: 401, status: 'ERROR', message: 'Unauthorized' } }, /reading data element types: dhis2 answered HTTP 401/],
    ['an answer without a dataElements list', { status: 200, body: { pager: {} } }, /without a dataElements list/],
    // DHIS2 leaves out an element the user may not read, as one that does not exist: fixed on its side, later.
    ['an answer that leaves the element out', { status: 200, body: { dataElements: [] } }, /does not list data element bx6fsa0t90x/],
  ])('counts %s as transient and asks again on the next call', async (_case, answer, message) => {
    const dhis2 = client();
    const before = partner.received(DATA_ELEMENTS_ROUTE).length;
    partner.queue(DATA_ELEMENTS_ROUTE, answer);
    const failure = await dhis2.dataElementTypes(['bx6fsa0t90x']).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PartnerError);
    expect(failure).toMatchObject({ kind: 'transient', message: expect.stringMatching(message) });
    expect(await dhis2.dataElementTypes(['bx6fsa0t90x'])).toEqual(new Map([['bx6fsa0t90x', 'DATE']]));
    expect(askedSince(before)).toHaveLength(2);
  });
});
