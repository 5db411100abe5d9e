import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';
import { createPartnerHttp, sendJson } from './http-client';
import { callPartner } from './failures';

/** The parts of a RapidPro API v2 contact that the companion uses. */
export interface RapidProContact {
  uuid: string;
  urns: string[];
  fields: Record<string, unknown>;
}

export interface RapidProClient {
  /** The contact, or null when RapidPro does not know it. */
  getContact(uuid: string): Promise<RapidProContact | null>;
}

export function createRapidProClient(options: { url: string; token: string; timeoutMs: number; logger: Logger; metrics: Metrics }): RapidProClient {
  const http = createPartnerHttp({
    partner: 'rapidpro',
    timeoutMs: options.timeoutMs,
    headers: { authorization: `Token ${options.token}` },
    logger: options.logger,
    metrics: options.metrics,
  });
  const base = options.url.replace(/\/+$/, '');
  return {
    async getContact(uuid) {
      const url = `${base}/api/v2/contacts.json?uuid=${encodeURIComponent(uuid)}`;
      const answer = await callPartner('rapidpro', () => sendJson(http, { method: 'GET', url }));
      const first = (answer.body as { results?: unknown[] } | undefined)?.results?.[0] as Partial<RapidProContact> | undefined;
      if (!first) return null;
      return { uuid: String(first.uuid ?? uuid), urns: Array.isArray(first.urns) ? first.urns.map(String) : [], fields: first.fields ?? {} };
    },
  };
}
