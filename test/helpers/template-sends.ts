import { randomUUID } from 'node:crypto';
import type { Deps } from '../../src/deps';
import type { TemplateSend } from '../../src/whatsapp/template-send-store';

/** What a send has come to: the worker's and staff's columns. */
export type TemplateSendState = Partial<Pick<TemplateSend, 'status' | 'attempts' | 'messageId' | 'upstreamStatus' | 'lastError' | 'cancelReason' | 'createdAt' | 'sentAt'>>;

/** A queued template send as the API accepts it, then moved on to `state` as the worker (or staff) would have. */
export async function storedTemplateSend(
  deps: Pick<Deps, 'db' | 'templateSendStore'>,
  apiClientId: string,
  send: { template: string; to?: string; state?: TemplateSendState },
): Promise<TemplateSend> {
  const request = { to: send.to ?? '+27820001001', name: send.template, language: 'en', params: ['Jane'], contactUuid: randomUUID() };
  const stored = await deps.templateSendStore.insert({ id: randomUUID(), api: 'cloud', request, apiClientId, idempotencyKey: null });
  if (!('created' in stored)) throw new Error('a new send was expected');
  return deps.db.templateSend.update({ where: { id: stored.created.id }, data: send.state ?? {} });
}
