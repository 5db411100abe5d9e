import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { createPartnerHttp, sendJson, type PartnerAnswer } from './http-client';
import { callPartner, PartnerError } from './failures';

export interface Dhis2TrackerClient {
  /** Imports tracker objects synchronously; `eventUid` is the event whose prior existence counts as success. */
  importTracker(payload: object, eventUid: string): Promise<PartnerAnswer>;
  /**
   * Each data element's value type (`DATE`, `TEXT`…) from DHIS2's metadata API, asked once per process
   * (again only after a failure). Any failure is transient: metadata is there to read once DHIS2 is.
   */
  dataElementTypes(ids: readonly string[]): Promise<ReadonlyMap<string, string>>;
}

interface DataElementsAnswer {
  dataElements?: Array<{ id?: unknown; valueType?: unknown }>;
}

interface ErrorReport {
  errorCode?: string;
  uid?: string;
}

/** True when the import failed only because this very event already exists (E1030): an earlier try got through. */
function onlyAlreadyExists(body: unknown, eventUid: string): boolean {
  const reports = (body as { validationReport?: { errorReports?: ErrorReport[] } } | undefined)?.validationReport?.errorReports;
  return Array.isArray(reports) && reports.length > 0 && reports.every((report) => report.errorCode === 'E1030' && report.uid === eventUid);
}

interface ImportReport {
  status?: unknown;
  stats?: { created?: number; updated?: number };
}

/**
 * Why a 2xx is not the import of our event, or undefined when it is: DHIS2 answers a synchronous
 * import with its report (OK or WARNING), counting the event as created or updated. Anything else, a
 * proxy's or single sign-on's page say, imported nothing, however successful its status.
 */
function notImported(body: unknown): string | undefined {
  const report = (body && typeof body === 'object' ? body : {}) as ImportReport;
  if (report.status !== 'OK' && report.status !== 'WARNING') return 'but not with a tracker import report';
  const { stats } = report;
  if (stats && (stats.created ?? 0) + (stats.updated ?? 0) < 1) return 'but its import report counts the event neither created nor updated';
  return undefined;
}

export function createDhis2TrackerClient(options: {
  url: string;
  token?: string;
  username?: string;
  password?: string;
  /** CODE: the events' org units are codes (RapidPro's facility codes), which DHIS2 then resolves itself. */
  orgUnitIdScheme: 'UID' | 'CODE';
  timeoutMs: number;
  logger: Logger;
  metrics: Metrics;
}): Dhis2TrackerClient {
  const authorization = options.token
    ? `ApiToken ${options.token}`
    : `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
  const http = createPartnerHttp({ partner: 'dhis2', timeoutMs: options.timeoutMs, headers: { authorization }, logger: options.logger, metrics: options.metrics });
  const idScheme = options.orgUnitIdScheme === 'CODE' ? '&orgUnitIdScheme=CODE' : '';
  const base = options.url.replace(/\/+$/, '');
  const url = `${base}/api/tracker?async=false&importStrategy=CREATE_AND_UPDATE${idScheme}`;
  const typesAsked = new Map<string, Promise<ReadonlyMap<string, string>>>();

  async function readTypes(ids: readonly string[]): Promise<ReadonlyMap<string, string>> {
    // DHIS2's metadata API: the object filter `id:in:[…]`, only the fields needed, one page.
    const filter = encodeURIComponent(`id:in:[${ids.join(',')}]`);
    const metadataUrl = `${base}/api/dataElements?filter=${filter}&fields=id,valueType&paging=false`;
    let answer: PartnerAnswer;
    try {
      answer = await callPartner('dhis2', () => sendJson(http, { method: 'GET', url: metadataUrl }));
    } catch (error) {
      if (!(error instanceof PartnerError)) throw error;
      throw new PartnerError('dhis2', 'transient', `reading data element types: ${error.message}`, error.answer, error.retryAfterMs);
    }
    const listed = (answer.body as DataElementsAnswer | undefined)?.dataElements;
    if (!Array.isArray(listed)) {
      throw new PartnerError('dhis2', 'transient', `dhis2 answered ${answer.status} to the data element query without a dataElements list`, answer);
    }
    const types = new Map(
      listed
        .filter((element) => typeof element.id === 'string' && typeof element.valueType === 'string')
        .map((element) => [element.id as string, element.valueType as string]),
    );
    // DHIS2 leaves out what the user may not read as well as what does not exist: both are fixed on DHIS2's
    // side, so the answer is not kept and the opt-out waits rather than fails.
    const unlisted = ids.filter((id) => !types.has(id));
    if (unlisted.length > 0) {
      throw new PartnerError('dhis2', 'transient', `dhis2 does not list data element ${unlisted.join(', ')} (check DHIS2_DATA_ELEMENTS and the user's metadata access)`, answer);
    }
    return types;
  }

  return {
    dataElementTypes(ids) {
      if (ids.length === 0) return Promise.resolve(new Map());
      const key = [...ids].sort().join(',');
      let types = typesAsked.get(key);
      if (!types) {
        types = readTypes(ids);
        typesAsked.set(key, types);
        // A failure is not kept: the next try asks again.
        types.catch(() => typesAsked.delete(key));
      }
      return types;
    },
    async importTracker(payload, eventUid) {
      let answer: PartnerAnswer;
      try {
        answer = await callPartner('dhis2', () => sendJson(http, { method: 'POST', url, json: payload }));
      } catch (error) {
        if (error instanceof PartnerError && error.answer && onlyAlreadyExists(error.answer.body, eventUid)) {
          return { ...error.answer, headers: {} };
        }
        throw error;
      }
      const why = notImported(answer.body);
      // Transient: a misconfigured proxy is fixed in time for a later try; past the limit staff see it.
      if (why) throw new PartnerError('dhis2', 'transient', `dhis2 answered ${answer.status} ${why}`, answer);
      return answer;
    },
  };
}
