import type { FakeAnswer, FakePartner, ReceivedRequest } from './fake-partner';

/**
 * DHIS2's side of data element value types, as dhis2-core behaves:
 * - `GET /api/dataElements?filter=id:in:[…]&fields=id,valueType&paging=false` answers
 *   `{"dataElements":[{"id","valueType"}]}` (no pager when paging=false), listing only the ids it knows;
 * - the tracker importer checks each event data value against its element's type
 *   (ValidationUtils.valueIsValid: DATE must be `yyyy-MM-dd`, DATETIME a date and time) and refuses the
 *   import with HTTP 409 and an import report whose error is E1302, "DataElement `{0}` is not valid: `{1}`"
 *   (tracker/imports/validation/ValidationCode.java), `{1}` being valueIsValid's key such as `value_not_valid_date`.
 */

export const DATA_ELEMENTS_ROUTE = 'GET /api/dataElements';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** valueIsValid's key for a value its type refuses, or undefined when the value is valid (the types the fake checks). */
function invalidity(value: string, valueType: string): string | undefined {
  if (valueType === 'DATE' && !DATE.test(value)) return 'value_not_valid_date';
  if (valueType === 'DATETIME' && !DATE_TIME.test(value)) return 'value_not_valid_datetime';
  if (valueType === 'INTEGER_POSITIVE' && !/^[1-9]\d*$/.test(value)) return 'value_not_positive_integer';
  return undefined;
}

/** Answers the metadata query with the types of the ids asked that DHIS2 knows (`valueTypes`). */
export function fakeDataElements(partner: FakePartner, valueTypes: Readonly<Record<string, string>>): void {
  partner.on(DATA_ELEMENTS_ROUTE, (request) => {
    const filter = new URL(request.url, 'http://x').searchParams.get('filter') ?? '';
    const ids = /^id:in:\[(.*)\]$/.exec(filter)?.[1]?.split(',') ?? [];
    return { status: 200, body: { dataElements: ids.filter((id) => id in valueTypes).map((id) => ({ id, valueType: valueTypes[id] })) } };
  });
}

interface TrackerEvent {
  event: string;
  dataValues: Array<{ dataElement: string; value: string }>;
}

/** The 409 DHIS2 answers a synchronous tracker import with when a data value is not valid for its type, or undefined. */
export function refusedValues(request: ReceivedRequest, valueTypes: Readonly<Record<string, string>>): FakeAnswer | undefined {
  const events = (request.body as { events: TrackerEvent[] }).events;
  const errorReports = events.flatMap((event) =>
    event.dataValues.flatMap(({ dataElement, value }) => {
      const key = valueTypes[dataElement] && invalidity(value, valueTypes[dataElement]);
      return key
        ? [{ message: `DataElement \`${dataElement}\` is not valid: \`${key}\``, errorCode: 'E1302', trackerType: 'EVENT', uid: event.event }]
        : [];
    }),
  );
  if (errorReports.length === 0) return undefined;
  return {
    status: 409,
    body: {
      status: 'ERROR',
      validationReport: { errorReports, warningReports: [] },
      stats: { created: 0, updated: 0, deleted: 0, ignored: events.length, total: events.length },
    },
  };
}
