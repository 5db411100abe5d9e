import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { buildFlowExport, type FlowWebhook } from '../../src/flows/export';
import { eventually, settledOptout, startTestApp, type TestApp } from '../helpers/app';
import { OPENHIM_ROUTE, openhimPartnerEnv, startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { checkFlowStructure, webhookNodeOf } from '../helpers/flow-spec';
import { renderWebhookCall, type RunContext } from '../helpers/goflow';
import { MAILROOM_USER_AGENT, sendAsMailroom } from '../helpers/raw-http';

// Short: a real phone number id has 15 digits, which the run's log check would take for a phone number.
const PHONE_NUMBER_ID = '1065';
const WHATSAPP_ROUTE = `POST /v26.0/${PHONE_NUMBER_ID}/messages`;

/** A name and a field value with every character that means something in a URL, a query or JSON. */
const NAME = 'Nomsa "Zoë" Dlamini & Co #1';
const NOTE = '12/01 + 50%?';

/** A run's context as goflow gives it to the Call Webhook action (the contact's fields all present, unset ones null). */
function runContext(urn: string): RunContext {
  return {
    contact: {
      uuid: randomUUID(),
      name: NAME,
      urn,
      fields: { note: NOTE, visit: '2027-01-12T09:30:00.000000+02:00', facility_code: NOTE, registered_by: '+27820001002', opt_out_date: null },
    },
    run: { uuid: randomUUID(), created_on: '2026-11-26T10:15:00.123456Z', flow: { uuid: randomUUID(), name: 'Companion flow' } },
    node: { uuid: randomUUID(), visit_count: 1 },
    results: { optout_reason: { value: 'Something else', category: 'other' } },
  };
}

/** A reminder's template with parameters of every kind (text, fields, a function, `@@`), as the flow author writes them. */
const REMINDER = { template: 'appointment_reminder', language: 'en', params: ['@contact.name', '@fields.note', '@(format_date(fields.visit, "DD/MM"))', 'Dr @fields.note, me@@x.org & 100% #2'] };

/** The Cloud API body of REMINDER with each parameter as RapidPro computes it for runContext's contact. */
const REMINDER_SENT = {
  template: {
    name: 'appointment_reminder',
    language: { code: 'en' },
    components: [{ type: 'body', parameters: [NAME, NOTE, '12/01', `Dr ${NOTE}, me@x.org & 100% #2`].map((text) => ({ type: 'text', text })) }],
  },
};

/** The generated flow's Call Webhook, rendered for the context by the goflow stand-in. */
function renderedCall(app: TestApp, webhook: FlowWebhook, context: RunContext) {
  const flowExport = buildFlowExport({ webhook, baseUrl: app.baseUrl, token: app.token });
  return renderWebhookCall(webhookNodeOf(checkFlowStructure(flowExport)).action, context);
}

/** The generated flow's Call Webhook, rendered for the context and sent as mailroom sends it. */
const runWebhook = (app: TestApp, webhook: FlowWebhook, context: RunContext) => sendAsMailroom(renderedCall(app, webhook, context));

const freshUrn = () => `whatsapp:2782${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;

describe('generated flows, run as RapidPro runs them', () => {
  let partner: FakePartner;
  let app: TestApp;

  beforeAll(async () => {
    partner = await startFakePartner();
    // WhatsApp Cloud API's answer to a template send (developers.facebook.com, "Send message templates").
    partner.on(WHATSAPP_ROUTE, (request) => {
      const to = (request.body as { to: string }).to;
      return { status: 200, body: { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to.replace('+', '') }], messages: [{ id: `wamid.${randomUUID()}` }] } };
    });
    partner.on(OPENHIM_ROUTE, { status: 202, body: { status: 'ok' } });
    app = await startTestApp({
      role: 'all',
      env: { ...openhimPartnerEnv(partner), WHATSAPP_URL: partner.url, WHATSAPP_TOKEN: 'whatsapp-secret', WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID },
    });
  });
  afterAll(async () => {
    await app.stop();
    await partner.stop();
  });

  /** What WhatsApp received for the run's contact. */
  const sentTo = (context: RunContext) => partner.received(WHATSAPP_ROUTE).filter((request) => (request.body as { to: string }).to === `+${context.contact.urn.slice('whatsapp:'.length)}`);

  it('sends WhatsApp the template parameters exactly as RapidPro computed them, whatever the name holds', async () => {
    const context = runContext(freshUrn());
    const answer = await runWebhook(app, { kind: 'whatsapp-template', ...REMINDER }, context);
    expect(answer.status).toBe(200);
    expect(sentTo(context).map((request) => request.body)).toEqual([expect.objectContaining(REMINDER_SENT)]);
  });

  it('queues the template with the parameters exactly as RapidPro computed them, sent once however often mailroom retries the call', async () => {
    const context = runContext(freshUrn());
    const call = renderedCall(app, { kind: 'whatsapp-template-send', ...REMINDER }, context);
    const queued = await sendAsMailroom(call);
    expect(queued).toMatchObject({ status: 202, body: { id: expect.any(String), status: 'queued' } });
    const { id } = queued.body as { id: string };
    // Mailroom sends a call it retries (no answer, or a 502-504) again as it is: the run's key makes it the same send.
    expect(await sendAsMailroom(call)).toMatchObject({ status: 200, body: { id } });

    const row = await eventually(async () => {
      const send = await app.deps.db.templateSend.findUnique({ where: { id } });
      return send?.status === 'sent' ? send : undefined;
    });
    expect(row).toMatchObject({ contactUuid: context.contact.uuid, idempotencyKey: `${context.run.uuid}-${context.node.uuid}-1` });
    expect(sentTo(context).map((request) => request.body)).toEqual([expect.objectContaining(REMINDER_SENT)]);

    // The run loops back through the node: its second pass is another send.
    const again = await sendAsMailroom(renderedCall(app, { kind: 'whatsapp-template-send', ...REMINDER }, { ...context, node: { ...context.node, visit_count: 2 } }));
    expect(again).toMatchObject({ status: 202 });
    expect((again.body as { id: string }).id).not.toBe(id);
  });

  it("submits an opt-out with the contact's uuid, number and fields as RapidPro sent them, with no RapidPro look-up", async () => {
    const context = runContext(freshUrn());
    const answer = await runWebhook(app, { kind: 'optout' }, context);
    expect(answer.status).toBe(202);
    const row = await settledOptout(app, (answer.body as { id: string }).id);
    expect(row).toMatchObject({ status: 'submitted', contactUuid: context.contact.uuid, idempotencyKey: context.run.uuid });
    const submitted = await eventually(async () => partner.received(OPENHIM_ROUTE).find((request) => (request.body as { sid: string }).sid === context.contact.uuid));
    expect(submitted.body).toMatchObject({ sid: context.contact.uuid, cmsisdn: `+${context.contact.urn.slice('whatsapp:'.length)}`, dmsisdn: '+27820001002', faccode: NOTE, optoutreason: 5 });
    // Other test files' opt-outs share the database, and this app's reconciler may take them up: only this contact counts.
    expect(partner.received('GET /api/v2/contacts.json').filter((request) => request.url.includes(context.contact.uuid))).toEqual([]);
  });

  // mailroom's own record of a webhook call (core/goflow/engine_test.go) is the stand-in's reference.
  it('has a mailroom stand-in that writes the bytes mailroom writes, the URL unescaped and cut at #', async () => {
    const received: Buffer[] = [];
    const server = net.createServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    try {
      expect((await sendAsMailroom({ method: 'GET', url: `http://${host}`, headers: {}, body: '' })).status).toBe(204);
      expect(Buffer.concat(received.splice(0)).toString()).toBe(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${MAILROOM_USER_AGENT}\r\nX-Mailroom-Mode: normal\r\nAccept-Encoding: gzip\r\n\r\n`);
      await sendAsMailroom({ method: 'POST', url: `http://${host}/x?a=b c&d=ë#frag`, headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(Buffer.concat(received).toString()).toBe(
        `POST /x?a=b c&d=ë HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${MAILROOM_USER_AGENT}\r\nContent-Length: 2\r\nContent-Type: application/json\r\nX-Mailroom-Mode: normal\r\nAccept-Encoding: gzip\r\n\r\n{}`,
      );
    } finally {
      server.close();
    }
  });
});
