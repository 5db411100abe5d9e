import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { createPartnerHttp, sendJson, type PartnerAnswer } from './http-client';
import { callPartner } from './failures';

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
    submitOptout: (message) => callPartner('openhim', () => sendJson(http, { method: 'POST', url, json: message })),
  };
}
