import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { createPartnerHttp, sendJson, type PartnerAnswer } from './http-client';
import { callPartner, isJsonAnswer, PartnerError } from './failures';

export interface OpenhimClient {
  /** Posts NurseConnect's opt-out message; resolves on success, throws a PartnerError otherwise. */
  submitOptout(message: object): Promise<PartnerAnswer>;
}

export function createOpenhimClient(options: {
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
  logger: Logger;
  metrics: Metrics;
}): OpenhimClient {
  const basic = Buffer.from(`${options.username}:${options.password}`).toString('base64');
  const http = createPartnerHttp({
    partner: 'openhim',
    timeoutMs: options.timeoutMs,
    headers: { authorization: `Basic ${basic}` },
    logger: options.logger,
    metrics: options.metrics,
  });
  const url = `${options.url.replace(/\/+$/, '')}/ws/rest/v1/nc/optout`;
  return {
    async submitOptout(message) {
      const answer = await callPartner('openhim', () => sendJson(http, { method: 'POST', url, json: message }));
      // Jembi answers in JSON, passed through by OpenHIM; a 2xx page of anything else (a proxy's or sign-on
      // page) did not reach it. Transient, as the tracker's non-report 2xx: a later try may, and eid stays the same.
      if (!isJsonAnswer(answer)) throw new PartnerError('openhim', 'transient', `openhim answered ${answer.status} but not with JSON`, answer);
      return answer;
    },
  };
}
