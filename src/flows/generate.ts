import type { ApiClientService } from '../api-clients/service';
import type { AuditEntry, AuditLog } from '../audit/log';
import { AppError } from '../errors';
import { buildFlowExport, type FlowExport, type FlowWebhook } from './export';

/** The API client whose token the flow sends: an active one's token, or a new client of that name. */
export type FlowClient = { kind: 'existing'; token: string } | { kind: 'new'; name: string };

/** Why no flow was made: the token is of no active client, or the new client's name is taken. */
export class FlowRefused extends Error {
  constructor(
    readonly reason: 'unknown-token' | 'name-taken',
    readonly clientName?: string,
  ) {
    super(reason === 'unknown-token' ? 'the token does not belong to an active API client' : `an API client named "${clientName}" already exists`);
    this.name = 'FlowRefused';
  }
}

export interface FlowGeneration {
  webhook: FlowWebhook;
  baseUrl: string;
  client: FlowClient;
  flowName?: string;
  /** Who asked: a staff member's email, or CLI_ACTOR. */
  actor: string;
}

/**
 * Makes a flow export for the staff pages and the command line alike: checks the token or creates
 * the client, and records both in the audit log. A new client's token is held only by the export.
 */
export async function generateFlow(
  deps: { apiClients: ApiClientService; audit: AuditLog },
  request: FlowGeneration,
): Promise<{ flowExport: FlowExport; clientName: string }> {
  const { webhook, actor } = request;
  const entries: AuditEntry[] = [];
  let client: { name: string; token: string };
  if (request.client.kind === 'existing') {
    const found = await deps.apiClients.authenticate(request.client.token);
    if (!found) throw new FlowRefused('unknown-token');
    client = { name: found.name, token: request.client.token };
  } else {
    try {
      const created = await deps.apiClients.create(request.client.name);
      client = { name: created.name, token: created.token };
      entries.push({ actor, action: 'api_client_create', target: created.name, details: { role: created.role, for: 'flow generator' } });
    } catch (error) {
      if (error instanceof AppError && error.status === 409) throw new FlowRefused('name-taken', request.client.name);
      throw error;
    }
  }
  const flowExport = buildFlowExport({ webhook, baseUrl: request.baseUrl, token: client.token, flowName: request.flowName });
  const details = webhook.kind === 'optout' ? { webhook: webhook.kind } : { webhook: webhook.kind, template: webhook.template, language: webhook.language ?? null };
  entries.push({ actor, action: 'flow_generate', target: client.name, details });
  await deps.audit.record(entries);
  return { flowExport, clientName: client.name };
}

/** The export as a file: pretty JSON and a final newline. */
export const flowExportText = (flowExport: FlowExport) => `${JSON.stringify(flowExport, null, 2)}\n`;
