import { randomUUID } from 'node:crypto';
import { jobIdOf } from '../../src/jobs/queue';
import { TEMPLATE_SEND_JOBS } from '../../src/whatsapp/template-sends';
import { startTestApp, type TestApp } from '../helpers/app';
import { storedTemplateSend, type TemplateSendState } from '../helpers/template-sends';
import { FakeGoogle, csrfTokenIn, signIn, signInEachRole, signInEnv } from '../helpers/google';

type Agent = Awaited<ReturnType<typeof signIn>>['agent'];

/** A Cloud API message id: base64 that holds the recipient's number (`Mjc4MjAwMDEwMDE` is 27820001001). */
const WAMID = 'wamid.HBgLMjc4MjAwMDEwMDEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA';
const PAGE = '/admin/whatsapp/queued';

describe('staff pages: queued WhatsApp sends', () => {
  let google: FakeGoogle;
  let app: TestApp;
  let apiClientId: string;
  let viewer: Agent;
  let operator: Agent;
  let admin: Agent;
  let viewerEmail: string;
  let operatorEmail: string;

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    // The web role alone: no worker takes the sends that staff put back in the queue, so their jobs stay waiting.
    app = await startTestApp({ env: signInEnv(google) });
    apiClientId = (await app.deps.apiClients.authenticate(app.token))!.id;
    ({ viewer, operator, admin, emails: { viewer: viewerEmail, operator: operatorEmail } } = await signInEachRole(app, google));
  });
  afterAll(async () => {
    await app.stop();
    await google.stop();
  });

  const storedSend = (template: string, state: TemplateSendState & { to?: string } = {}) => {
    const { to, ...rest } = state;
    return storedTemplateSend(app.deps, apiClientId, { template, to, state: rest });
  };

  const failedSend = (template: string, to?: string) =>
    storedSend(template, { to, status: 'failed', attempts: 1, upstreamStatus: 400, lastError: 'WhatsApp answered HTTP 400: (#132001) Template name does not exist in the translation' });

  async function post(agent: Agent, path: string, form: Record<string, string | string[]> = {}) {
    const token = csrfTokenIn((await agent.get('/admin')).text);
    return agent.post(path).type('form').send({ ...form, _csrf: token });
  }

  it('lists the sends newest first, filtered by status, template, number and day, with numbers and message ids masked except to admins', async () => {
    const template = `reminder_${randomUUID().slice(0, 8)}`;
    const sent = await storedSend(template, { status: 'sent', attempts: 1, upstreamStatus: 200, messageId: WAMID, createdAt: new Date('2026-11-20T10:00:00Z'), sentAt: new Date('2026-11-20T10:00:01Z') });
    const failed = await storedSend(template, {
      to: '+27820001002',
      status: 'failed',
      attempts: 3,
      upstreamStatus: 400,
      lastError: 'WhatsApp answered HTTP 400: no such user +27820001002',
      createdAt: new Date('2026-11-21T10:00:00Z'),
    });
    await storedSend(template, { to: '+27820001003', status: 'cancelled', cancelReason: 'sent by mistake', createdAt: new Date('2026-11-22T10:00:00Z') });

    const all = await viewer.get(`${PAGE}?template=${template.toUpperCase()}`);
    expect(all.status).toBe(200);
    expect(all.text).toContain(`<a href="${PAGE}" aria-current="page">Queued WhatsApp sends</a>`);
    expect(all.text).toMatch(/3 sends, newest first/);
    const masked = ['+2782*****03', '+2782*****02', '+2782*****01'];
    const positions = masked.map((number) => all.text.indexOf(number));
    expect(positions.every((position) => position > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    for (const number of ['+27820001001', '+27820001002', '+27820001003']) expect(all.text).not.toContain(number);
    expect(all.text).toContain('no such user +2782*****02');
    expect(all.text).not.toContain('HBgLMjc4MjAwMDEwMDE');
    expect(all.text).toContain('<td data-label="Message id" class="excerpt"><span class="muted">hidden</span></td>');
    expect(all.text).toContain(`<a href="${PAGE}/${failed.id}">+2782*****02</a>`);
    expect(all.text).toContain('<span class="status status-sent">sent</span>');
    expect(all.text).toContain('Type phone numbers in full, with the country code.');
    // A viewer gets no forms.
    expect(all.text).not.toContain('name="id"');
    expect(all.text).not.toContain(`action="${PAGE}/retry"`);

    const list = (agent: Agent, query: string) => agent.get(`${PAGE}?template=${template}&${query}`).then((response) => response.text);
    expect(await list(viewer, 'status=failed')).toMatch(/1 send, newest first/);
    expect(await list(viewer, 'status=queued')).toMatch(/No sends match/);
    expect(await list(viewer, 'from=2026-11-21&to=2026-11-21')).toMatch(/1 send, newest first[\s\S]*\+2782\*{5}02/);
    expect(await list(viewer, 'from=2026-11-23')).toMatch(/No sends match/);
    // A bad status is ignored; a day that is not one is refused.
    expect(await list(viewer, 'status=lost')).toMatch(/3 sends, newest first/);
    expect((await viewer.get(`${PAGE}?from=yesterday`)).status).toBe(400);

    // Part of a number finds nothing but for admins: it would give masked digits away one by one.
    for (const part of ['%2B27%2082', '2782000100', '0001002']) expect(await list(viewer, `recipient=${part}`)).toMatch(/No sends match/);
    const whole = await list(viewer, 'recipient=%2B27%2082%20000%201002');
    expect(whole).toMatch(/1 send, newest first/);
    expect(whole).toContain(`${PAGE}/${failed.id}`);
    const searches = await app.deps.db.auditEvent.findMany({ where: { actor: viewerEmail, action: 'number_search' } });
    expect(searches.map((event) => [event.target, event.details])).toContainEqual(['+2782*****02', { page: 'whatsapp queued' }]);

    const forAdmin = await list(admin, '');
    expect(forAdmin).toContain('+27820001002');
    expect(forAdmin).toContain('no such user +27820001002');
    expect(forAdmin).toContain(`<td data-label="Message id" class="excerpt">${WAMID}</td>`);
    expect(forAdmin).not.toContain('Type phone numbers in full');
    expect(await list(admin, 'recipient=0001002')).toMatch(/1 send, newest first/);
    expect(await list(admin, `recipient=${encodeURIComponent('+27 82')}`)).toMatch(/3 sends, newest first/);

    // Operators may select what can be retried: failed and cancelled sends, not sent ones.
    const forOperator = await list(operator, '');
    expect(forOperator.match(/name="id"/g)).toHaveLength(2);
    expect(forOperator).not.toContain(`name="id" value="${sent.id}"`);
    expect(forOperator).toContain('<button type="submit">Retry selected</button>');
  });

  it("shows a send's page: status, tries, last answer and error; retry and cancel for operators only", async () => {
    const send = await failedSend(`notice_${randomUUID().slice(0, 8)}`);
    const page = await viewer.get(`${PAGE}/${send.id}`);
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<dt>Status<\/dt><dd><span class="status status-failed">failed<\/span><\/dd>/);
    expect(page.text).toContain('<dt>Attempts</dt><dd>1</dd>');
    expect(page.text).toContain('<dt>Last answer</dt><dd>HTTP 400</dd>');
    expect(page.text).toContain('Template name does not exist in the translation');
    expect(page.text).toContain('+2782*****01');
    expect(page.text).not.toMatch(/Retry now|Cancel this send/);

    const forOperator = await operator.get(`${PAGE}/${send.id}`);
    expect(forOperator.text).toContain(`<form method="post" action="${PAGE}/${send.id}/retry">`);
    expect(forOperator.text).toContain(`<form method="post" action="${PAGE}/${send.id}/cancel">`);

    expect((await viewer.get(`${PAGE}/${randomUUID()}`)).status).toBe(404);
    expect((await viewer.get(`${PAGE}/not-an-id`)).status).toBe(404);
  });

  async function jobState(id: string) {
    return app.deps.templateSendQueue.bullQueue.getJobState(jobIdOf(TEMPLATE_SEND_JOBS, id));
  }

  it('retries the selected failed and cancelled sends after a confirmation: queued again, enqueued and audited', async () => {
    const template = `broadcast_${randomUUID().slice(0, 8)}`;
    const failed = await failedSend(template);
    const cancelled = await storedSend(template, { status: 'cancelled', attempts: 2, cancelReason: 'paused the broadcast' });
    const sent = await storedSend(template, { status: 'sent', attempts: 1, messageId: WAMID });

    const nothing = await post(operator, `${PAGE}/retry`, { id: [sent.id], template });
    expect(nothing.status).toBe(303);
    expect(nothing.headers.location).toBe(`${PAGE}?template=${template}`);
    expect((await operator.get(nothing.headers.location!)).text).toMatch(/Nothing to retry: select failed or cancelled sends first/);

    const ask = await post(operator, `${PAGE}/retry`, { id: [failed.id, cancelled.id, sent.id], template, status: '' });
    expect(ask.status).toBe(200);
    expect(ask.text).toMatch(/<h1>Retry 2 sends\?<\/h1>/);
    expect(ask.text).toMatch(/Yes, retry 2 sends/);
    expect(ask.text).not.toContain(`value="${sent.id}"`);
    expect(await app.deps.templateSendStore.findById(failed.id)).toMatchObject({ status: 'failed' });
    expect(await jobState(failed.id)).toBe('unknown');

    const done = await post(operator, `${PAGE}/retry`, { id: [failed.id, cancelled.id], template, confirmed: 'yes' });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe(`${PAGE}?template=${template}`);
    expect((await operator.get(done.headers.location!)).text).toMatch(/2 sends went back into the queue and will be sent now/);
    expect(await app.deps.templateSendStore.findById(failed.id)).toMatchObject({ status: 'queued', attempts: 1, priorAttempts: 1 });
    expect(await app.deps.templateSendStore.findById(cancelled.id)).toMatchObject({ status: 'queued', attempts: 2, priorAttempts: 2, cancelReason: null });
    expect(await app.deps.templateSendStore.findById(sent.id)).toMatchObject({ status: 'sent' });
    for (const id of [failed.id, cancelled.id]) expect(await jobState(id)).toBe('waiting');
    expect(await jobState(sent.id)).toBe('unknown');

    const audited = await app.deps.db.auditEvent.findMany({ where: { action: 'template_send_retry', target: { in: [failed.id, cancelled.id, sent.id] } } });
    expect(audited).toHaveLength(2);
    for (const id of [failed.id, cancelled.id]) {
      expect(audited).toContainEqual(expect.objectContaining({ actor: operatorEmail, target: id, details: { bulk: true } }));
    }
    const auditPage = await admin.get('/admin/audit?action=template_send_retry');
    expect(auditPage.text).toContain('<td data-label="What">retried queued WhatsApp send</td>');
    expect(auditPage.text).toContain(`<td data-label="Of"><a href="${PAGE}/${failed.id}">${failed.id}</a></td>`);
  });

  it("retries one send from its page, and says so when it is no longer failed or cancelled", async () => {
    const send = await failedSend(`nudge_${randomUUID().slice(0, 8)}`);
    const retried = await post(operator, `${PAGE}/${send.id}/retry`);
    expect(retried.status).toBe(303);
    expect(retried.headers.location).toBe(`${PAGE}/${send.id}`);
    const page = await operator.get(retried.headers.location!);
    expect(page.text).toMatch(/1 send went back into the queue and will be sent now/);
    expect(page.text).toContain(`${operatorEmail} retried queued WhatsApp send`);
    expect(await app.deps.templateSendStore.findById(send.id)).toMatchObject({ status: 'queued', priorAttempts: 1 });
    expect(await jobState(send.id)).toBe('waiting');
    expect(await app.deps.db.auditEvent.findFirst({ where: { action: 'template_send_retry', target: send.id } })).toMatchObject({ actor: operatorEmail, details: null });

    const again = await post(operator, `${PAGE}/${send.id}/retry`);
    expect(again.status).toBe(303);
    expect((await operator.get(again.headers.location!)).text).toMatch(/Not retried: it is queued now/);
    expect(await app.deps.db.auditEvent.count({ where: { action: 'template_send_retry', target: send.id } })).toBe(1);
  });

  it('cancels a failed send with a reason, audited and shown on its page, and refuses to cancel a sent one (409)', async () => {
    const template = `stop_${randomUUID().slice(0, 8)}`;
    const send = await failedSend(template);
    const withoutReason = await post(operator, `${PAGE}/${send.id}/cancel`, { reason: '  ' });
    expect(withoutReason.status).toBe(400);
    expect(withoutReason.text).toMatch(/reason: say why it should not be sent/);

    const cancelled = await post(operator, `${PAGE}/${send.id}/cancel`, { reason: 'The clinic closed: call +27820001009 instead' });
    expect(cancelled.status).toBe(303);
    expect(cancelled.headers.location).toBe(`${PAGE}/${send.id}`);
    expect(await app.deps.templateSendStore.findById(send.id)).toMatchObject({ status: 'cancelled', cancelReason: 'The clinic closed: call +27820001009 instead' });
    expect(await app.deps.db.auditEvent.findFirst({ where: { action: 'template_send_cancel', target: send.id } })).toMatchObject({
      actor: operatorEmail,
      details: { reason: 'The clinic closed: call +27820001009 instead' },
    });
    const page = await operator.get(`${PAGE}/${send.id}`);
    expect(page.text).toMatch(/Cancelled: it will not be sent/);
    expect(page.text).toContain('<dt>Why it was cancelled</dt><dd>The clinic closed: call +2782*****09 instead</dd>');
    expect(page.text).toContain('cancelled queued WhatsApp send: “The clinic closed: call +2782*****09 instead”');
    expect(page.text).not.toContain('+27820001009');
    // A cancelled send can be retried, but not cancelled again.
    expect(page.text).toContain('Retry now');
    expect(page.text).not.toContain('Cancel this send');

    const sent = await storedSend(template, { status: 'sent', attempts: 1, messageId: WAMID });
    const refused = await post(operator, `${PAGE}/${sent.id}/cancel`, { reason: 'too late' });
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(/This send is sent: only a queued or failed send can be cancelled/);
    expect(await app.deps.templateSendStore.findById(sent.id)).toMatchObject({ status: 'sent', cancelReason: null });
    expect(await app.deps.db.auditEvent.count({ where: { action: 'template_send_cancel', target: sent.id } })).toBe(0);
  });

  it("answers a viewer's retry and cancel with 403, and changes nothing", async () => {
    const send = await failedSend(`held_${randomUUID().slice(0, 8)}`);
    const forms: Array<[string, Record<string, string>]> = [
      [`${PAGE}/retry`, { id: send.id, confirmed: 'yes' }],
      [`${PAGE}/${send.id}/retry`, {}],
      [`${PAGE}/${send.id}/cancel`, { reason: 'duplicate' }],
    ];
    for (const [path, form] of forms) {
      const response = await post(viewer, path, form);
      expect([path, response.status]).toEqual([path, 403]);
      expect(response.text).toMatch(/This needs the operator role, and you are a viewer/);
    }
    expect(await app.deps.templateSendStore.findById(send.id)).toMatchObject({ status: 'failed', cancelReason: null });
    expect(await jobState(send.id)).toBe('unknown');
    expect(await app.deps.db.auditEvent.count({ where: { target: send.id } })).toBe(0);
  });
});
