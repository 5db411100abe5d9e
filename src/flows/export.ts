import { randomUUID } from 'node:crypto';

/**
 * RapidPro flow exports that call the companion: one Call Webhook node with the right URL, token,
 * body and Success/Failure branches, each branch sending the contact a message the author can edit.
 * Pure: the same input and UUID source give the same export.
 */

/** The flow spec version written; RapidPro imports it and migrates it to its own current version. */
export const FLOW_SPEC_VERSION = '13.1.0';

/** The body of RapidPro's own default Call Webhook, with `extraContact` added to its `contact` object. */
const webhookBody = (extraContact = '') =>
  `@(json(object("contact", object("uuid", contact.uuid, "name", contact.name, "urn", contact.urn${extraContact}), ` +
  '"flow", object("uuid", run.flow.uuid, "name", run.flow.name), ' +
  '"results", foreach_value(results, extract_object, "value", "category"), ' +
  '"run", object("uuid", run.uuid, "created_on", run.created_on))))';

/** RapidPro's own default Call Webhook body, so the companion reads what it reads from any flow. */
export const DEFAULT_WEBHOOK_BODY = webhookBody();

/** The opt-out flow's body: the default one with the contact's fields, so that no RapidPro look-up is needed. */
export const OPTOUT_WEBHOOK_BODY = webhookBody(', "fields", contact.fields');

/**
 * The webhooks a flow can call. `whatsapp-template` sends the template while RapidPro waits;
 * `whatsapp-template-send` takes the same template and parameters and only queues the send.
 */
export type FlowWebhook =
  | { kind: 'optout' }
  | { kind: 'whatsapp-template' | 'whatsapp-template-send'; template: string; language?: string; params: string[] };

export type FlowWebhookKind = FlowWebhook['kind'];

/**
 * What each webhook's flow is made of. The routes that queue (opt-outs, queued sends) get an
 * Idempotency-Key: mailroom, in the versions that retry webhooks, retries a POST that timed out or met
 * a 502-504 only when it carries such a key, and the key turns the retry into a 200 with the first
 * record instead of a second one. An opt-out is one per run (`@run.uuid`); a queued send is one per
 * pass through its node, so that a flow that loops back to it, or a copy of the node, sends again.
 * The synchronous template route gets none: WhatsApp has no such key, so a retried call could send
 * the message twice.
 */
const WEBHOOKS: Record<FlowWebhookKind, { path: string; body: string; idempotencyKey?: string; title: string; successMessage: string }> = {
  optout: {
    path: '/api/v1/optouts',
    body: OPTOUT_WEBHOOK_BODY,
    idempotencyKey: '@run.uuid',
    title: 'nurse opt-out',
    successMessage: 'You have been opted out. Thank you.',
  },
  'whatsapp-template': {
    path: '/api/v1/whatsapp/templates',
    body: DEFAULT_WEBHOOK_BODY,
    title: 'WhatsApp template',
    successMessage: 'Message sent.',
  },
  // The queued route answers 202 once the send is stored: Success means queued, not yet sent.
  'whatsapp-template-send': {
    path: '/api/v1/whatsapp/template-sends',
    body: DEFAULT_WEBHOOK_BODY,
    idempotencyKey: '@(run.uuid)-@(node.uuid)-@(node.visit_count)',
    title: 'queued WhatsApp template',
    successMessage: 'Message queued: it will be sent shortly.',
  },
};

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

/** The top-level names RapidPro's engine reads as variables (goflow's RunContextTopLevels); `@other.x` is text. */
const CONTEXT_TOP_LEVELS = new Set(['child', 'contact', 'fields', 'globals', 'input', 'legacy_extra', 'node', 'parent', 'locals', 'results', 'resume', 'run', 'ticket', 'trigger', 'urns', 'webhook']);

/** A letter, digit or `_`: what an identifier such as `@contact.first_name` is made of. */
const NAME_CHAR = /[\p{L}\p{N}_]/u;

/** A piece of RapidPro template text: literal text, or an expression (`contact.name` of `@contact.name`, `…` of `@(…)`). */
type TemplatePart = { kind: 'text'; text: string } | { kind: 'expression'; expression: string };

/** Where the `"…"` literal that opens at `start` ends (after its closing quote), read as goflow reads it. */
function textLiteralEnd(template: string, start: number): number {
  let escaped = false;
  for (let index = start + 1; index < template.length; index++) {
    if (template[index] === '"' && !escaped) return index + 1;
    escaped = template[index] === '\\';
  }
  return template.length;
}

/**
 * Splits template text as RapidPro's engine (goflow's excellent scanner) does: `@@` is a literal @,
 * `@(…)` runs to its balancing parenthesis (parentheses in `"…"` do not count; unbalanced, it is
 * text), `@name.path` is an expression when `name` is a context top level, a `.` belonging to it only
 * when a name character follows.
 */
function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  const pushText = (more: string) => (text += more);
  const pushExpression = (expression: string) => {
    if (text) parts.push({ kind: 'text', text });
    text = '';
    parts.push({ kind: 'expression', expression });
  };
  let index = 0;
  while (index < template.length) {
    const char = template[index]!;
    const next = template[index + 1];
    if (char !== '@' || next === undefined) {
      pushText(char);
      index++;
    } else if (next === '@') {
      pushText('@');
      index += 2;
    } else if (next === '(') {
      let depth = 1;
      let end = index + 2;
      while (end < template.length && depth > 0) {
        if (template[end] === '"') {
          end = textLiteralEnd(template, end);
          continue;
        }
        if (template[end] === '(') depth++;
        else if (template[end] === ')') depth--;
        end++;
      }
      if (depth === 0) pushExpression(template.slice(index + 2, end - 1));
      else pushText(template.slice(index));
      index = end;
    } else if (NAME_CHAR.test(next)) {
      let end = index + 1;
      while (end < template.length) {
        if (NAME_CHAR.test(template[end]!)) end++;
        else if (template[end] === '.' && NAME_CHAR.test(template[end + 1] ?? '')) end += 2;
        else break;
      }
      const identifier = template.slice(index + 1, end);
      if (CONTEXT_TOP_LEVELS.has(identifier.split('.')[0]!.toLowerCase())) pushExpression(identifier);
      else pushText(`@${identifier}`);
      index = end;
    } else {
      pushText('@');
      index++;
    }
  }
  if (text) parts.push({ kind: 'text', text });
  return parts;
}

/** Literal text as RapidPro template text: every `@` doubled, so that none starts an expression. */
const templateLiteral = (text: string) => text.replaceAll('@', '@@');

/**
 * A query value as RapidPro template text. RapidPro's engine puts an expression's result into a URL
 * as it is, unescaped, so each expression is wrapped in `url_encode()`; the text around them is
 * URL-encoded here, once (`@` included, so no literal `@` is left to read as an expression).
 */
function queryTemplate(value: string): string {
  return parseTemplate(value)
    .map((part) => (part.kind === 'text' ? encodeURIComponent(part.text) : `@(url_encode(${part.expression}))`))
    .join('');
}

function webhookUrl(baseUrl: string, webhook: FlowWebhook): string {
  const url = `${templateLiteral(baseUrl.replace(/\/+$/, ''))}${WEBHOOKS[webhook.kind].path}`;
  if (webhook.kind === 'optout') return url;
  const query = [`template=${encodeURIComponent(webhook.template)}`];
  if (webhook.language) query.push(`language=${encodeURIComponent(webhook.language)}`);
  for (const param of webhook.params) query.push(`param=${queryTemplate(param)}`);
  return `${url}?${query.join('&')}`;
}

function messageNode(uuid: () => string, text: string) {
  return { uuid: uuid(), actions: [{ uuid: uuid(), type: 'send_msg', text, quick_replies: [], attachments: [] }], exits: [{ uuid: uuid(), destination_uuid: null }] };
}

export function buildFlowExport(request: FlowRequest, uuid: () => string = randomUUID) {
  const { webhook } = request;
  const made = WEBHOOKS[webhook.kind];
  const defaultName = `Companion: ${made.title}${webhook.kind === 'optout' ? '' : ` ${webhook.template}`}`;
  const name = (request.flowName ?? defaultName).slice(0, MAX_FLOW_NAME);
  const success = messageNode(uuid, request.successMessage ?? made.successMessage);
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
          Authorization: `Token ${templateLiteral(request.token)}`,
          'Content-Type': 'application/json',
          ...(made.idempotencyKey ? { 'Idempotency-Key': made.idempotencyKey } : {}),
        },
        body: made.body,
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
