import { randomUUID } from 'node:crypto';

/**
 * RapidPro flow exports that call the companion: one Call Webhook node with the right URL, token,
 * body and Success/Failure branches, each branch sending the contact a message the author can edit.
 * Pure: the same input and UUID source give the same export.
 */

/** The flow spec version written; RapidPro imports it and migrates it to its own current version. */
export const FLOW_SPEC_VERSION = '13.1.0';

/** RapidPro's own default Call Webhook body, so the companion reads what it reads from any flow. */
export const DEFAULT_WEBHOOK_BODY =
  '@(json(object("contact", object("uuid", contact.uuid, "name", contact.name, "urn", contact.urn), ' +
  '"flow", object("uuid", run.flow.uuid, "name", run.flow.name), ' +
  '"results", foreach_value(results, extract_object, "value", "category"), ' +
  '"run", object("uuid", run.uuid, "created_on", run.created_on))))';

export type FlowWebhook =
  | { kind: 'optout' }
  | { kind: 'whatsapp-template'; template: string; language?: string; params: string[] };

export interface FlowRequest {
  webhook: FlowWebhook;
  /** Where RapidPro reaches the companion, e.g. https://companion.example.org */
  baseUrl: string;
  /** The API token the flow sends as `Authorization: Token …`. */
  token: string;
  flowName?: string;
  successMessage?: string;
  failureMessage?: string;
}

const RESULT_NAME = 'Companion';
/** RapidPro's longest flow name. */
export const MAX_FLOW_NAME = 64;

/** What may follow `@` in a RapidPro identifier such as `@contact.name` or `@fields.first_name`. */
const IDENTIFIER_CHAR = /[\p{L}\p{N}_.]/u;

/**
 * Where the RapidPro expression that starts at `start` ends, or `start` when none starts there; as
 * RapidPro's template scanner reads it: `@@` is a literal @, `@(…)` runs to its balancing parenthesis,
 * `@name.path` to the first character that cannot be in an identifier (a final `.` is text).
 */
function expressionEnd(text: string, start: number): number {
  if (text[start] !== '@') return start;
  if (text[start + 1] === '@') return start + 2;
  if (text[start + 1] === '(') {
    let depth = 0;
    for (let index = start + 1; index < text.length; index++) {
      if (text[index] === '(') depth++;
      else if (text[index] === ')' && --depth === 0) return index + 1;
    }
    return start;
  }
  let end = start + 1;
  while (end < text.length && IDENTIFIER_CHAR.test(text[end]!)) end++;
  if (end > start + 2 && text[end - 1] === '.') end--;
  return end > start + 1 ? end : start;
}

/**
 * A query value as RapidPro template text. RapidPro evaluates the expressions in a webhook URL and
 * URL-encodes what they give, so they stay as written (`@(format_date(fields.visit, "DD/MM"))` must
 * not become `%2C%20%22…`); only the text around them is encoded.
 */
function queryTemplate(value: string): string {
  let out = '';
  let index = 0;
  while (index < value.length) {
    const end = expressionEnd(value, index);
    if (end > index) {
      out += value.slice(index, end);
      index = end;
    } else {
      const char = String.fromCodePoint(value.codePointAt(index)!);
      out += encodeURIComponent(char);
      index += char.length;
    }
  }
  return out;
}

function webhookUrl(baseUrl: string, webhook: FlowWebhook): string {
  const base = baseUrl.replace(/\/+$/, '');
  if (webhook.kind === 'optout') return `${base}/api/v1/optouts`;
  const query: Array<[string, string]> = [['template', webhook.template]];
  if (webhook.language) query.push(['language', webhook.language]);
  for (const param of webhook.params) query.push(['param', param]);
  return `${base}/api/v1/whatsapp/templates?${query.map(([key, value]) => `${key}=${queryTemplate(value)}`).join('&')}`;
}

function messageNode(uuid: () => string, text: string) {
  return { uuid: uuid(), actions: [{ uuid: uuid(), type: 'send_msg', text, quick_replies: [], attachments: [] }], exits: [{ uuid: uuid(), destination_uuid: null }] };
}

export function buildFlowExport(request: FlowRequest, uuid: () => string = randomUUID) {
  const { webhook } = request;
  const name = (request.flowName ?? (webhook.kind === 'optout' ? 'Companion: nurse opt-out' : `Companion: WhatsApp template ${webhook.template}`)).slice(0, MAX_FLOW_NAME);
  const success = messageNode(uuid, request.successMessage ?? (webhook.kind === 'optout' ? 'You have been opted out. Thank you.' : 'Message sent.'));
  const failure = messageNode(uuid, request.failureMessage ?? 'Sorry, something went wrong. Please try again later.');
  const [successCategory, failureCategory, successExit, failureExit] = [uuid(), uuid(), uuid(), uuid()];
  const webhookNode = {
    uuid: uuid(),
    actions: [
      {
        uuid: uuid(),
        type: 'call_webhook',
        method: 'POST',
        url: webhookUrl(request.baseUrl, webhook),
        headers: {
          Authorization: `Token ${request.token}`,
          'Content-Type': 'application/json',
          ...(webhook.kind === 'optout' ? { 'Idempotency-Key': '@run.uuid' } : {}),
        },
        body: DEFAULT_WEBHOOK_BODY,
        result_name: RESULT_NAME,
      },
    ],
    router: {
      type: 'switch',
      operand: `@results.${RESULT_NAME.toLowerCase()}.category`,
      cases: [{ uuid: uuid(), type: 'has_only_text', arguments: ['Success'], category_uuid: successCategory }],
      categories: [
        { uuid: successCategory, name: 'Success', exit_uuid: successExit },
        { uuid: failureCategory, name: 'Failure', exit_uuid: failureExit },
      ],
      default_category_uuid: failureCategory,
    },
    exits: [
      { uuid: successExit, destination_uuid: success.uuid },
      { uuid: failureExit, destination_uuid: failure.uuid },
    ],
  };
  const nodes = [webhookNode, success, failure];
  return {
    version: '13',
    site: request.baseUrl,
    flows: [
      {
        uuid: uuid(),
        name,
        spec_version: FLOW_SPEC_VERSION,
        language: 'eng',
        type: 'messaging',
        revision: 1,
        expire_after_minutes: 10080,
        localization: {},
        nodes,
        _ui: {
          nodes: {
            [webhookNode.uuid]: { position: { left: 0, top: 0 }, type: 'split_by_webhook', config: {} },
            [success.uuid]: { position: { left: 0, top: 200 }, type: 'execute_actions' },
            [failure.uuid]: { position: { left: 300, top: 200 }, type: 'execute_actions' },
          },
          stickies: {},
        },
      },
    ],
    campaigns: [],
    triggers: [],
    fields: [],
    groups: [],
  };
}

export type FlowExport = ReturnType<typeof buildFlowExport>;
