import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { eventually, optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { launchChromium } from '../helpers/browser';
import { checkFlowStructure, webhookNodeOf } from '../helpers/flow-spec';
import { openhimPartnerEnv, startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { CONFIGURED_ADMIN, FakeGoogle, signInEnv } from '../helpers/google';
import { storedTemplateSend } from '../helpers/template-sends';

const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

describe('staff pages in a real browser', () => {
  let google: FakeGoogle;
  let partner: FakePartner;
  let app: TestApp;
  let browser: Browser;
  /** Contacts whose opt-outs OpenHIM turns down (400). */
  const rejected = new Set<string>();

  beforeAll(async () => {
    google = await new FakeGoogle().start();
    partner = await startFakePartner();
    partner.on('GET /api/v2/contacts.json', () => ({ status: 200, body: { results: [{ urns: ['tel:+27820001001'], fields: { facility_code: '123456' } }] } }));
    partner.on('POST /ws/rest/v1/nc/optout', (request) =>
      rejected.has((request.body as { sid: string }).sid) ? { status: 400, body: { error: 'unknown facility code' } } : { status: 202, body: { status: 'ok' } },
    );
    app = await startTestApp({ role: 'all', env: { ...signInEnv(google), ...openhimPartnerEnv(partner) } });
    browser = await launchChromium();
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  }, 120_000); // the first run on a machine unpacks the browser
  afterAll(async () => {
    await browser?.close();
    await app?.stop();
    await partner?.stop();
    await google?.stop();
  });

  /** Console errors: a page that broke its content security policy shows one ("Refused to …"). */
  function watchErrors(page: Page): string[] {
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    return errors;
  }

  it('signs in with Google, retries a failed opt-out, and sees it submitted', async () => {
    const body = optoutWebhook({ uuid: randomUUID() });
    rejected.add(body.contact.uuid);
    const sent = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
    const id = sent.body.id as string;
    await eventually(async () => ((await app.deps.optoutStore.findById(id))?.status === 'failed' ? true : undefined));
    rejected.delete(body.contact.uuid); // the facility code is fixed upstream

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    const errors = watchErrors(page);
    google.nextAccount({ email: CONFIGURED_ADMIN, email_verified: true, name: 'The Boss' });

    // /admin → /auth/google → the fake Google → the callback → back to /admin, signed in.
    await page.goto(`${app.baseUrl}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin');
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    expect(await page.getByText(CONFIGURED_ADMIN).isVisible()).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-overview.png'), fullPage: true });

    await page.getByRole('link', { name: 'Review the failed opt-outs' }).click();
    await page.getByLabel('Contact UUID, opt-out id or phone number').fill(body.contact.uuid);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.locator(`a[href="/admin/optouts/${id}"]`).click();
    await page.getByRole('heading', { name: 'Attempts' }).waitFor();
    expect(await page.locator('.fields .status').textContent()).toBe('failed');
    expect(await page.locator('.attempt').first().textContent()).toContain('HTTP 400');

    await page.getByRole('button', { name: 'Retry now' }).click();
    // The message after the redirect (or an error page: then the failure shows what it said).
    const message = page.locator('.flash, .message').first();
    await message.waitFor().catch(async (error: Error) => {
      throw new Error(`${error.message}\non ${page.url()}: ${await page.locator('main').textContent()}`);
    });
    expect(await message.textContent()).toMatch(/went back into the queue/);
    const status = await eventually(async () => {
      await page.reload();
      const text = await page.locator('.fields .status').textContent();
      return text === 'submitted' ? text : undefined;
    }, 10_000, 200);
    expect(status).toBe('submitted');
    expect(await page.locator('.attempt').count()).toBe(2);
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-optout.png'), fullPage: true });

    // The same page on a phone: no sideways scrolling.
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${app.baseUrl}/admin/optouts`);
    expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(375);
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-optouts-phone.png'), fullPage: true });

    // Every section, as an admin sees it, within the content security policy and without errors.
    await page.setViewportSize({ width: 1280, height: 900 });
    const sections = page.getByRole('navigation', { name: 'Sections' });
    for (const section of ['Opt-outs', 'WhatsApp sends', 'Queued WhatsApp sends', 'API clients', 'Flow generator', 'Staff', 'Audit log']) {
      await sections.getByRole('link', { name: section, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: section }).waitFor();
    }

    // A queued send the worker gave up on, in its list and on its own page, with its forms.
    const apiClientId = (await app.deps.apiClients.authenticate(app.token))!.id;
    const lastError = 'WhatsApp answered HTTP 400: (#132001) Template name does not exist in the translation';
    const send = await storedTemplateSend(app.deps, apiClientId, { template: 'appointment_reminder', state: { status: 'failed', attempts: 1, upstreamStatus: 400, lastError } });
    await sections.getByRole('link', { name: 'Queued WhatsApp sends', exact: true }).click();
    await page.getByLabel('Template').fill('appointment_reminder');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-template-sends.png'), fullPage: true });
    await page.locator(`a[href="/admin/whatsapp/queued/${send.id}"]`).click();
    await page.getByRole('heading', { level: 1, name: 'Queued WhatsApp send' }).waitFor();
    expect(await page.getByRole('button', { name: 'Cancel this send' }).isVisible()).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-template-send.png'), fullPage: true });
    await page.getByRole('link', { name: 'API clients', exact: true }).click();
    await page.getByRole('textbox', { name: 'Name' }).fill('rapidpro-nurseconnect');
    await page.getByRole('button', { name: 'Create API client' }).click();
    expect(await page.locator('code.token').textContent()).toMatch(/^cmp_/);

    // A WhatsApp template flow, downloaded as a file (no PUBLIC_URL here: it calls this address).
    await page.getByRole('link', { name: 'Flow generator', exact: true }).click();
    await page.getByRole('radio', { name: /^WhatsApp template:/ }).check();
    await page.getByRole('textbox', { name: 'Template name' }).fill('appointment_reminder');
    await page.getByRole('textbox', { name: /^Body parameters/ }).fill('@contact.name\n@(format_date(fields.visit, "DD/MM"))');
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-flows.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download the flow' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^flow-whatsapp-appointment_reminder-\d{4}-\d{2}-\d{2}(-\d+)?\.json$/);
    const { action } = webhookNodeOf(checkFlowStructure(JSON.parse(fs.readFileSync((await download.path())!, 'utf8'))));
    expect(action.url).toBe(
      `${app.baseUrl}/api/v1/whatsapp/templates?template=appointment_reminder&param=@(url_encode(contact.name))&param=@(url_encode(format_date(fields.visit, "DD/MM")))`,
    );
    expect(errors).toEqual([]);
    await context.close();
  });

  it('renders the API documentation under its content security policy, which allows no other origin', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    const answer = await page.goto(`${app.baseUrl}/docs/`);
    expect(answer?.headers()['content-security-policy']).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
    await page.getByText('/api/v1/optouts', { exact: true }).first().waitFor({ timeout: 8000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'api-docs.png') });
    expect(errors).toEqual([]);
    await page.close();
  });
});
