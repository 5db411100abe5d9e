import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { ApiClientService } from '../api-clients/service';
import type { AuditLog } from '../audit/log';
import { signedIn } from '../auth/guard';
import { MAX_FLOW_NAME, type FlowWebhook } from '../flows/export';
import { FlowRefused, flowExportText, generateFlow } from '../flows/generate';
import { languageCode, paramList, templateName } from '../whatsapp/schemas';
import { clientNameSchema } from './people-routes';
import { sendPage } from '../pages/send';
import type { PageContextFor } from './page-context';
import { EMPTY_FLOW_FORM, flowGeneratorPage, type FlowForm } from './views/flows';

/** An empty form field counts as left out. */
const blank = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);

/** A textarea's lines, trimmed, without the empty ones. */
const nonEmptyLines = (value: unknown) =>
  typeof value === 'string' ? value.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '') : (value ?? []);

const webhookFields = z.discriminatedUnion(
  'webhook',
  [
    z.object({ webhook: z.literal('optout') }),
    z.object({
      webhook: z.enum(['whatsapp-template', 'whatsapp-template-send']),
      template: z.string().trim().min(1, 'required for the WhatsApp webhook').pipe(templateName),
      language: z.preprocess(blank, languageCode.optional()),
      params: z.preprocess(nonEmptyLines, paramList),
    }),
  ],
  { error: 'choose the opt-out, the WhatsApp template or the queued WhatsApp template webhook' },
);

const clientFields = z.discriminatedUnion(
  'client',
  [
    z.object({ client: z.literal('new'), client_name: z.preprocess(blank, clientNameSchema.optional()) }),
    z.object({ client: z.literal('existing'), token: z.string().trim().min(1, 'paste the token of an active API client').max(200) }),
  ],
  { error: 'choose to create an API client or to use an existing token' },
);

const flowFormSchema = z
  .object({ flow_name: z.preprocess(blank, z.string().trim().max(MAX_FLOW_NAME).optional()) })
  .and(webhookFields)
  .and(clientFields);

export type FlowFormInput = z.output<typeof flowFormSchema>;

/** What each of the form's fields is called on the page. */
export const FLOW_FORM_LABELS: Record<string, string> = {
  webhook: 'Webhook',
  template: 'Template name',
  language: 'Language',
  params: 'Body parameters',
  client: 'API client',
  client_name: 'Name of the new client',
  token: 'Token',
  flow_name: 'Flow name',
};

/**
 * The flow generator's form checked, or what is wrong with it, each problem named by `labels`
 * (the command line passes its options in the form's shape, named as its options).
 */
export function readFlowForm(body: unknown, labels = FLOW_FORM_LABELS): { input: FlowFormInput } | { problems: string[] } {
  const parsed = flowFormSchema.safeParse(body);
  if (parsed.success) return { input: parsed.data };
  return { problems: [...new Set(parsed.error.issues.map((issue) => `${labels[String(issue.path[0])] ?? 'Form'}: ${issue.message}`))] };
}

export function webhookOf(input: FlowFormInput): FlowWebhook {
  return input.webhook === 'optout' ? { kind: 'optout' } : { kind: input.webhook, template: input.template, language: input.language, params: input.params };
}

/**
 * `flow-optout-2026-01-31`, `flow-whatsapp-appointment_reminder-2026-01-31`,
 * `flow-whatsapp-queued-appointment_reminder-2026-01-31`: the new client's name and the file's.
 */
function flowLabel(webhook: FlowWebhook, now: Date): string {
  const queued = webhook.kind === 'whatsapp-template-send' ? 'queued-' : '';
  const what = webhook.kind === 'optout' ? 'optout' : `whatsapp-${queued}${webhook.template.slice(0, 60)}`;
  return `flow-${what}-${now.toISOString().slice(0, 10)}`;
}

/** The form as it was sent, to fill it in again; the token is never sent back. */
function formValuesOf(body: unknown): FlowForm {
  const sent = (body ?? {}) as Record<string, unknown>;
  const entries = Object.keys(EMPTY_FLOW_FORM).map((key) => [key, typeof sent[key] === 'string' ? sent[key] : EMPTY_FLOW_FORM[key as keyof FlowForm]]);
  return Object.fromEntries(entries) as FlowForm;
}

/**
 * The flow generator: a RapidPro flow export whose Call Webhook node calls the companion with a
 * token, downloaded as a file. Admins only, since it may create an API client.
 */
export function flowPages(deps: {
  apiClients: ApiClientService;
  audit: AuditLog;
  pageContext: PageContextFor;
  publicUrl: string | undefined;
  defaultLanguage: string;
}): Router {
  const { apiClients, audit, pageContext, publicUrl, defaultLanguage } = deps;
  const router = Router();

  // Without PUBLIC_URL (development only) the flow calls the address this page was reached at.
  const baseUrlOf = (req: Request) => publicUrl ?? `${req.protocol}://${req.get('host')}`;

  function showForm(req: Request, res: Response, form: FlowForm, refusal?: { status: number; text: string }) {
    const ctx = pageContext(req, 'flows');
    const view = {
      form,
      baseUrl: baseUrlOf(req),
      baseUrlGuessed: !publicUrl,
      defaultLanguage,
      exampleClientName: flowLabel({ kind: 'optout' }, new Date()),
    };
    sendPage(res, flowGeneratorPage(refusal ? { ...ctx, flash: { kind: 'error', text: refusal.text } } : ctx, view), refusal?.status);
  }

  /** The first of `base`, `base-2`, `base-3` … that no API client has. */
  async function unusedClientName(base: string): Promise<string> {
    const taken = new Set((await apiClients.list()).map((client) => client.name));
    let name = base;
    for (let suffix = 2; taken.has(name); suffix++) name = `${base}-${suffix}`;
    return name;
  }

  router.get('/', (req, res) => showForm(req, res, EMPTY_FLOW_FORM));

  router.post('/', async (req, res) => {
    const form = formValuesOf(req.body);
    const read = readFlowForm(req.body);
    if ('problems' in read) {
      showForm(req, res, form, { status: 400, text: `The flow was not made. ${read.problems.join('. ')}.` });
      return;
    }
    const { input } = read;
    const webhook = webhookOf(input);
    const label = flowLabel(webhook, new Date());
    const client = input.client === 'existing' ? { kind: 'existing' as const, token: input.token } : { kind: 'new' as const, name: input.client_name ?? (await unusedClientName(label)) };
    try {
      const { flowExport } = await generateFlow({ apiClients, audit }, { webhook, baseUrl: baseUrlOf(req), client, flowName: input.flow_name, actor: signedIn(req).email });
      // The file holds a token: never cached. Its name has only letters, digits, '.', '-' and '_'.
      res
        .status(200)
        .set({ 'Cache-Control': 'no-store', 'Content-Disposition': `attachment; filename="${label}.json"` })
        .type('json')
        .send(flowExportText(flowExport));
    } catch (error) {
      if (!(error instanceof FlowRefused)) throw error;
      if (error.reason === 'unknown-token') {
        const text = 'That token does not belong to an active API client: it may be mistyped, or its client was revoked. Paste the token of an active client, or create a new client for this flow.';
        showForm(req, res, form, { status: 400, text });
      } else {
        showForm(req, res, form, { status: 409, text: `There is already an API client named “${error.clientName}”: choose another name, or paste its token.` });
      }
    }
  });

  return router;
}
