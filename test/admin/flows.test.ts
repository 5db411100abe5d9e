import { randomUUID } from 'node:crypto';
import { parseToken } from '../../src/api-clients/tokens';
import { startTestApp, type TestApp } from '../helpers/app';
import { checkFlowStructure, nodeAfter, webhookNodeOf } from '../helpers/flow-spec';
import { renderWebhookCall, type RunContext } from '../helpers/goflow';
import { sendAsMailroom } from '../helpers/raw-http';
import { CONFIGURED_ADMIN, FakeGoogle, csrfTokenIn, domainAccount, signIn, signInEnv, staffEmail } from '../helpers/google';

type Agent = Awaited<ReturnType<typeof signIn>>['agent'];

/** Where RapidPro reaches the companion, as the flows must say. */
const PUBLIC_URL = 'http://companion.example.org:8080';
const TODAY = new Date().toISOString().slice(0, 10);

const OPTOUT_FORM = { webhook: 'optout', template: '', language: '', params: '', client: 'new', client_name: '', token: '', flow_name: '' };
const TEMPLATE_FORM = { ...OPTOUT_FORM, webhook: 'whatsapp-template', template: 'appointment_reminder', language: 'pt_BR', params: '@contact.name\r\n\r\n Monday 10:00 \r\n' };

async function generate(agent: Agent, form: Record<string, string>) {
  const token = csrfTokenIn((await agent.get('/admin/flows')).text);
  // Downloads are read as text whatever their type, as a browser saves them.
  return agent.post('/admin/flows').type('form').send({ ...form, _csrf: token }).buffer(true).parse((res, done) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => done(null, text));
  });
}

/** A run of the flow for a contact whose name holds what means something in a URL. */
function runContext(fields: Record<string, string> = {}): RunContext {
  return {
    contact: { uuid: randomUUID(), name: 'Nomsa "Zoë" Dlamini & Co #1', urn: 'whatsapp:27820001001', fields },
    run: { uuid: randomUUID(), created_on: '2026-11-26T10:15:00.123456Z', flow: { uuid: randomUUID(), name: 'Generated flow' } },
    node: { uuid: randomUUID(), visit_count: 1 },
    results: {},
  };
}

/** The downloaded flow: checked against the flow spec, with its Call Webhook action. */
function downloaded(response: { status: number; body: unknown }) {
  expect(response.status).toBe(200);
  const flow = checkFlowStructure(JSON.parse(response.body as string));
  return { flow, ...webhookNodeOf(flow) };
}

describe('flow generator', () => {
  let google: FakeGoogle;
  let app: TestApp;
  let admin: Agent;

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    // WhatsApp settings, so that the simulator's template requests are answered; nothing is sent.
    app = await startTestApp({ env: { ...signInEnv(google), PUBLIC_URL, WHATSAPP_TOKEN: 'not-used', WHATSAPP_PHONE_NUMBER_ID: '1000' } });
    admin = (await signIn(app, google, { email: CONFIGURED_ADMIN, email_verified: true })).agent;
  });
  afterAll(async () => {
    await app.stop();
    await google.stop();
  });

  it('is for admins only, in their navigation only', async () => {
    expect((await admin.get('/admin')).text).toContain('<a href="/admin/flows">Flow generator</a>');
    const page = await admin.get('/admin/flows');
    expect(page.status).toBe(200);
    expect(page.text).toContain(`The flow will call <code>${PUBLIC_URL}</code>`);

    const operatorEmail = staffEmail('operator');
    await app.deps.staff.grant(operatorEmail, 'operator');
    for (const account of [domainAccount(), domainAccount(operatorEmail)]) {
      const { agent } = await signIn(app, google, account);
      const home = await agent.get('/admin');
      expect(home.text).not.toContain('/admin/flows');
      expect((await agent.get('/admin/flows')).status).toBe(403);
      const post = await agent.post('/admin/flows').type('form').send({ ...OPTOUT_FORM, _csrf: csrfTokenIn(home.text) });
      expect(post.status).toBe(403);
      expect(post.text).toMatch(/This needs the admin role/);
    }
  });

  it('refuses the form without its CSRF token, and creates nothing', async () => {
    const name = `flow-${randomUUID()}`;
    const response = await admin.post('/admin/flows').type('form').send({ ...OPTOUT_FORM, client_name: name });
    expect(response.status).toBe(403);
    expect(response.text).toMatch(/This form has expired or did not come from these pages/);
    expect(await app.deps.db.apiClient.findUnique({ where: { name } })).toBeNull();
  });

  it('makes an opt-out flow with a new API client whose token works, as a download that is never cached', async () => {
    const response = await generate(admin, OPTOUT_FORM);
    const { flow, action, node } = downloaded(response);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.headers['cache-control']).toBe('no-store');
    const filename = /^attachment; filename="(flow-optout-\d{4}-\d{2}-\d{2}(?:-\d+)?)\.json"$/.exec(response.headers['content-disposition']!)?.[1];
    expect(filename).toMatch(new RegExp(`^flow-optout-${TODAY}`));

    expect(flow.name).toBe('Companion: nurse opt-out');
    expect(action).toMatchObject({ method: 'POST', url: `${PUBLIC_URL}/api/v1/optouts`, headers: { 'Idempotency-Key': '@run.uuid' } });
    expect(node.router!.categories.map((category) => category.name)).toEqual(['Success', 'Failure']);
    const token = /^Token (cmp_\S+)$/.exec(action.headers.Authorization!)?.[1];
    // The new client is named after the file, and its token is the one in the flow.
    const client = await app.deps.apiClients.authenticate(token!);
    expect(client).toMatchObject({ name: filename, role: 'rapidpro' });

    // RapidPro's simulator running the flow as it is (rendered, and sent as mailroom sends it): accepted, and nothing stored.
    const context = runContext({ facility_code: '123456', registered_by: '+27820001002' });
    const call = renderWebhookCall(action, context);
    const simulated = await sendAsMailroom({ ...call, url: call.url.replace(PUBLIC_URL, app.baseUrl) }, 'simulation');
    expect(simulated.status).toBe(202);
    expect(simulated.body).toMatchObject({ status: 'queued', simulated: true });
    expect(await app.deps.db.optout.findFirst({ where: { contactUuid: context.contact.uuid } })).toBeNull();

    const audit = await app.deps.db.auditEvent.findMany({ where: { target: client!.name }, orderBy: { at: 'asc' } });
    expect(audit.map((event) => [event.actor, event.action, event.details])).toEqual([
      [CONFIGURED_ADMIN, 'api_client_create', { role: 'rapidpro', for: 'flow generator' }],
      [CONFIGURED_ADMIN, 'flow_generate', { webhook: 'optout' }],
    ]);
    // The secret is base64url, which may itself hold underscores: split by the token's own pattern.
    expect(JSON.stringify(audit)).not.toContain(parseToken(token!)!.secret);
    expect((await admin.get('/admin/audit?action=flow_generate')).text).toMatch(
      new RegExp(`<td data-label="What">generated a RapidPro flow with API client</td>\\s*<td data-label="Of">${client!.name}</td>`),
    );

    // The next one made today without a name gets a client of its own.
    const again = await generate(admin, OPTOUT_FORM);
    const next = await app.deps.apiClients.authenticate(/^Token (\S+)$/.exec(downloaded(again).action.headers.Authorization!)![1]!);
    expect(next!.name).toMatch(new RegExp(`^flow-optout-${TODAY}-\\d+$`));
  });

  it('makes a WhatsApp template flow whose URL carries the template and the parameters, each expression in url_encode()', async () => {
    const name = `flow-reminders-${randomUUID().slice(0, 8)}`;
    const response = await generate(admin, { ...TEMPLATE_FORM, client_name: name, flow_name: 'Appointment reminder' });
    const { flow, action } = downloaded(response);
    expect(response.headers['content-disposition']).toBe(`attachment; filename="flow-whatsapp-appointment_reminder-${TODAY}.json"`);
    expect(flow.name).toBe('Appointment reminder');
    expect(action.url).toBe(`${PUBLIC_URL}/api/v1/whatsapp/templates?template=appointment_reminder&language=pt_BR&param=@(url_encode(contact.name))&param=Monday%2010%3A00`);
    expect(action.headers['Idempotency-Key']).toBeUndefined();
    const token = /^Token (\S+)$/.exec(action.headers.Authorization!)![1]!;
    expect(await app.deps.apiClients.authenticate(token)).toMatchObject({ name });

    // RapidPro's simulator runs the flow as it is: the URL, headers and body rendered with no escaping, sent as mailroom sends them
    // (to this app, which the flow knows as PUBLIC_URL). The simulator's send is answered, not made.
    const context = runContext();
    const call = renderWebhookCall(action, context);
    const simulated = await sendAsMailroom({ ...call, url: call.url.replace(PUBLIC_URL, app.baseUrl) }, 'simulation');
    expect(simulated.status).toBe(200);
    expect(simulated.body).toMatchObject({ simulated: true, messages: [{ id: expect.stringMatching(/^simulated-/) }] });
    await app.deps.whatsapp.settle();
    expect(await app.deps.db.whatsappSend.findFirst({ where: { contactUuid: context.contact.uuid } })).toBeNull();

    const audit = await app.deps.db.auditEvent.findFirst({ where: { target: name, action: 'flow_generate' } });
    expect(audit!.details).toEqual({ webhook: 'whatsapp-template', template: 'appointment_reminder', language: 'pt_BR' });
  });

  it('makes a queued WhatsApp template flow: the same query for the queued route, keyed by the run and the pass through the node, its Success branch saying queued', async () => {
    expect((await admin.get('/admin/flows')).text).toMatch(
      /<input type="radio" name="webhook" value="whatsapp-template-send"> <span>WhatsApp template, queued: <code>POST \/api\/v1\/whatsapp\/template-sends<\/code>/,
    );
    const name = `flow-broadcast-${randomUUID().slice(0, 8)}`;
    const response = await generate(admin, { ...TEMPLATE_FORM, webhook: 'whatsapp-template-send', client_name: name });
    const { flow, action, node } = downloaded(response);
    expect(response.headers['content-disposition']).toBe(`attachment; filename="flow-whatsapp-queued-appointment_reminder-${TODAY}.json"`);
    expect(flow.name).toBe('Companion: queued WhatsApp template appointment_reminder');
    expect(action).toMatchObject({
      url: `${PUBLIC_URL}/api/v1/whatsapp/template-sends?template=appointment_reminder&language=pt_BR&param=@(url_encode(contact.name))&param=Monday%2010%3A00`,
      headers: { 'Idempotency-Key': '@(run.uuid)-@(node.uuid)-@(node.visit_count)' },
    });
    expect(nodeAfter(flow, node, 'Success').actions[0]).toMatchObject({ text: 'Message queued: it will be sent shortly.' });
    const token = /^Token (\S+)$/.exec(action.headers.Authorization!)![1]!;
    expect(await app.deps.apiClients.authenticate(token)).toMatchObject({ name });

    // RapidPro's simulator runs it: answered as queued, and nothing stored.
    const context = runContext();
    const call = renderWebhookCall(action, context);
    const simulated = await sendAsMailroom({ ...call, url: call.url.replace(PUBLIC_URL, app.baseUrl) }, 'simulation');
    expect(simulated.status).toBe(202);
    expect(simulated.body).toMatchObject({ status: 'queued', simulated: true });
    await app.deps.templateSends.settle();
    expect(await app.deps.db.templateSend.findFirst({ where: { contactUuid: context.contact.uuid } })).toBeNull();

    const audit = await app.deps.db.auditEvent.findFirst({ where: { target: name, action: 'flow_generate' } });
    expect(audit!.details).toEqual({ webhook: 'whatsapp-template-send', template: 'appointment_reminder', language: 'pt_BR' });

    // Refused, the form comes back with the queued webhook still chosen.
    const refused = await generate(admin, { ...TEMPLATE_FORM, webhook: 'whatsapp-template-send', template: '' });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatch(/Template name: required for the WhatsApp webhook/);
    expect(refused.body).toMatch(/<input type="radio" name="webhook" value="whatsapp-template-send" checked>/);
  });

  it("puts a pasted token of an active client into the flow, and refuses any other with a message that says why", async () => {
    const pasted = await generate(admin, { ...OPTOUT_FORM, client: 'existing', token: app.token });
    expect(downloaded(pasted).action.headers.Authorization).toBe(`Token ${app.token}`);
    const client = (await app.deps.apiClients.authenticate(app.token))!;
    expect(await app.deps.db.auditEvent.count({ where: { target: client.name, action: 'api_client_create' } })).toBe(0);
    expect(await app.deps.db.auditEvent.count({ where: { target: client.name, action: 'flow_generate' } })).toBe(1);

    const revoked = await app.deps.apiClients.create(`revoked-${randomUUID().slice(0, 8)}`);
    await app.deps.apiClients.revoke(revoked.name);
    const template = `refused_${randomUUID().slice(0, 8)}`;
    for (const token of [`${app.token}x`, revoked.token, 'not a token']) {
      const refused = await generate(admin, { ...TEMPLATE_FORM, template, client: 'existing', token });
      expect(refused.status).toBe(400);
      expect(refused.headers['content-type']).toMatch(/text\/html/);
      expect(refused.body).toMatch(/That token does not belong to an active API client: it may be mistyped, or its client was revoked/);
      // The form comes back filled in, but never with the token.
      expect(refused.body).toContain(`value="${template}"`);
      expect(refused.body).toMatch(/<input type="radio" name="client" value="existing" checked>/);
      expect(refused.body).not.toContain(token);
    }
    expect(await app.deps.db.auditEvent.count({ where: { action: 'flow_generate', details: { path: ['template'], equals: template } } })).toBe(0);
  });

  it('says what is wrong with the form, and creates no client', async () => {
    const name = `flow-${randomUUID()}`;
    const noTemplate = await generate(admin, { ...TEMPLATE_FORM, client_name: name, template: '', language: 'portuguese' });
    expect(noTemplate.status).toBe(400);
    expect(noTemplate.body).toMatch(/Template name: required for the WhatsApp webhook/);
    expect(noTemplate.body).toMatch(/Language: must be a WhatsApp language code/);
    expect(noTemplate.body).toContain('value="portuguese"');

    const noToken = await generate(admin, { ...OPTOUT_FORM, client: 'existing' });
    expect(noToken.body).toMatch(/Token: paste the token of an active API client/);
    expect((await generate(admin, { ...OPTOUT_FORM, client_name: 'no spaces please' })).body).toMatch(/Name of the new client: letters, digits/);
    expect((await generate(admin, { ...OPTOUT_FORM, client_name: name, webhook: 'sms' })).body).toMatch(/Webhook: choose the opt-out, the WhatsApp template or the queued WhatsApp template webhook/);
    expect(await app.deps.db.apiClient.findUnique({ where: { name } })).toBeNull();

    const taken = await generate(admin, { ...OPTOUT_FORM, client_name: (await app.deps.apiClients.authenticate(app.token))!.name });
    expect(taken.status).toBe(409);
    expect(taken.body).toMatch(/There is already an API client named “test-[0-9a-f-]+”: choose another name, or paste its token/);
  });
});
