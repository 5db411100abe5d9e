import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { createPartnerHttp, sendJson, type PartnerAnswer } from './http-client';
import { callPartner, PartnerError } from './failures';

export interface Dhis2TrackerClient {
  /** Imports tracker objects synchronously; `eventUid` is the event whose prior existence counts as success. */
  importTracker(payload: object, eventUid: string): Promise<PartnerAnswer>;
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
  const url = `${options.url.replace(/\/+$/, '')}/api/tracker?async=false&importStrategy=CREATE_AND_UPDATE${idScheme}`;
  return {
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
