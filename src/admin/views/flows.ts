import { MAX_FLOW_NAME } from '../../flows/export';
import { html, type Html } from '../../pages/html';
import { csrfField, layout, type PageContext } from '../../pages/layout';

/** What the form was filled with, to show it again when it is refused (never the token). */
export interface FlowForm {
  webhook: string;
  template: string;
  language: string;
  params: string;
  client: string;
  client_name: string;
  flow_name: string;
}

export const EMPTY_FLOW_FORM: FlowForm = { webhook: 'optout', template: '', language: '', params: '', client: 'new', client_name: '', flow_name: '' };

export interface FlowGeneratorView {
  form: FlowForm;
  /** Where the flow will call the companion. */
  baseUrl: string;
  /** True when PUBLIC_URL is not set and the address comes from this request. */
  baseUrlGuessed: boolean;
  defaultLanguage: string;
  /** The name a new client gets when none is given, for an opt-out flow made today. */
  exampleClientName: string;
}

function choice(name: string, value: string, current: string, label: Html) {
  return html`<label class="choice"><input type="radio" name="${name}" value="${value}"${current === value ? html` checked` : ''}> <span>${label}</span></label>`;
}

export function flowGeneratorPage(ctx: PageContext, view: FlowGeneratorView) {
  const { form } = view;
  return layout(
    ctx,
    'Flow generator',
    html`<p>Makes a RapidPro flow that calls the companion: a <em>Call Webhook</em> node with the URL, the
<code>Authorization: Token …</code> header and the body already set, and a Success and a Failure branch that each send
the contact a message you can edit. Import the file in RapidPro under <strong>Settings → Import</strong>.</p>
<p>The flow will call <code>${view.baseUrl}</code>${
      view.baseUrlGuessed ? html` (this page's address: set <code>PUBLIC_URL</code> to the address RapidPro reaches the companion at)` : ' (PUBLIC_URL)'
    }.</p>
<form class="flow-form" method="post" action="/admin/flows">${csrfField(ctx)}
<fieldset>
  <legend>Webhook</legend>
  ${choice('webhook', 'optout', form.webhook, html`Opt-out: <code>POST /api/v1/optouts</code> records the contact's opt-out for DHIS2`)}
  ${choice('webhook', 'whatsapp-template', form.webhook, html`WhatsApp template: <code>POST /api/v1/whatsapp/templates</code> sends an approved template message while the flow waits, and the flow takes Success once WhatsApp accepted it`)}
  ${choice('webhook', 'whatsapp-template-send', form.webhook, html`WhatsApp template, queued: <code>POST /api/v1/whatsapp/template-sends</code> queues the same message and answers at once, for reminders and broadcasts; Success means queued, and the companion sends it within WhatsApp's rate limit`)}
</fieldset>
<fieldset>
  <legend>Template (for the WhatsApp webhooks)</legend>
  <label>Template name <input name="template" value="${form.template}" maxlength="512" pattern="[a-z0-9_]+" placeholder="appointment_reminder"></label>
  <label>Language <input name="language" value="${form.language}" maxlength="8" pattern="[a-z]{2,3}(_[A-Z]{2,4})?" placeholder="${view.defaultLanguage}">
    <span class="hint">WhatsApp's code (en, pt_BR); empty: WHATSAPP_DEFAULT_LANGUAGE (${view.defaultLanguage}) when the message is sent</span></label>
  <label>Body parameters, one per line <textarea name="params" rows="3" placeholder="@contact.name&#10;@fields.appointment_date">${form.params}</textarea>
    <span class="hint">Text, or RapidPro expressions such as <code>@contact.name</code> or <code>@(format_date(fields.visit, "DD/MM"))</code>, for {{1}}, {{2}}, … in order. Each reaches WhatsApp as RapidPro computes it: the flow URL-encodes it, so do not wrap it in <code>url_encode()</code>. <code>@@</code> is a literal @.</span></label>
</fieldset>
<fieldset>
  <legend>API client</legend>
  <p class="hint">The flow sends the client's token, so the file holds it: keep the file like a password and delete it once imported.</p>
  ${choice('client', 'new', form.client, html`Create a new API client for this flow (listed, and revocable, on the API clients page)`)}
  <label>Name of the new client <input name="client_name" value="${form.client_name}" maxlength="100" pattern="[A-Za-z0-9._\\-]+" placeholder="${view.exampleClientName}">
    <span class="hint">Empty: flow-, the webhook and today's date. Its token goes into the file and is shown nowhere else.</span></label>
  ${choice('client', 'existing', form.client, html`Use the token of an active API client`)}
  <label>Token <input type="password" name="token" autocomplete="off" maxlength="200" placeholder="cmp_…">
    <span class="hint">Tokens are stored hashed, so the companion cannot look an existing client's token up: paste it.</span></label>
</fieldset>
<label>Flow name (optional) <input name="flow_name" value="${form.flow_name}" maxlength="${MAX_FLOW_NAME}" placeholder="Companion: nurse opt-out"></label>
<p><button type="submit">Download the flow</button></p>
</form>`,
  );
}
