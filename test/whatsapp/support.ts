import { randomInt, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/ops/logger';
import { startTestApp, type TestApp } from '../helpers/app';
import { PARTNER_SECRETS, type FakeAnswer, type FakePartner } from '../helpers/fake-partner';

/** A South African mobile number nobody else in the run uses, so that rows and requests are told apart. */
export function freshNumber(): string {
  return `+2782${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;
}

/**
 * The business phone number the Cloud API tests send from, and its send route at the default Graph API
 * version. Meta's ids have 15 digits; this one is shorter, or the run's log check would take the send
 * path's id (logged at debug) for a phone number.
 */
export const CLOUD_PHONE_NUMBER_ID = '10654035';
export const CLOUD_MESSAGES_ROUTE = `POST /v26.0/${CLOUD_PHONE_NUMBER_ID}/messages`;

/** The settings of an app whose Cloud API is `upstream`. */
export function cloudEnv(upstream: Pick<FakePartner, 'url'>): Record<string, string> {
  return { WHATSAPP_URL: upstream.url, WHATSAPP_TOKEN: PARTNER_SECRETS.whatsappToken, WHATSAPP_PHONE_NUMBER_ID: CLOUD_PHONE_NUMBER_ID };
}

/** The message id the fake Cloud API gives a message to `to`: base64 of the number, as Meta's ids are. */
export const cloudMessageIdFor = (to: string) => `wamid.${Buffer.from(to).toString('base64')}`;

/** The Cloud API's answer to a message it accepted (Meta's Cloud API reference, "Messages"): the recipient as given and as wa_id, and the message id. */
export function cloudAccepted(to: string, id = cloudMessageIdFor(to)): FakeAnswer {
  return { status: 200, body: { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to.slice(1) }], messages: [{ id }] } };
}

/** The Cloud API body of a template message with body variables (Meta's Cloud API reference, "Template messages"). */
export function cloudTemplateMessage(to: string, name: string, language: string, params: string[]) {
  return {
    messaging_product: 'whatsapp',
    to,
    type: 'template',
    template: { name, language: { code: language }, components: [{ type: 'body', parameters: params.map((text) => ({ type: 'text', text })) }] },
  };
}

/**
 * A Cloud API error as the Graph API answers it (Meta's "WhatsApp error codes"): the code's title in the
 * message, OAuthException, the code, error_data.details and a trace id.
 */
export function cloudError(status: number, code: number, title: string, details: string, headers: Record<string, string> = {}): FakeAnswer {
  return {
    status,
    headers,
    body: { error: { message: `(#${code}) ${title}`, type: 'OAuthException', code, error_data: { messaging_product: 'whatsapp', details }, fbtrace_id: 'AZdQ7kLz1fWq' } },
  };
}

/** RapidPro's default Call Webhook body for a contact. */
export function rapidproDefaultBody(urn: string) {
  return {
    contact: { uuid: randomUUID(), name: 'Jane', urn },
    flow: { uuid: 'bead76f5-dac4-4c9d-996c-c62b326e8c0a', name: 'Appointment reminders' },
    path: [],
    results: {},
    run: { uuid: randomUUID(), created_on: '2026-11-26T10:15:00.000Z' },
    input: null,
    channel: { uuid: randomUUID(), name: 'WhatsApp' },
  };
}

/** A logger at debug level whose lines are kept, to check what never reaches a log. */
export function capturingLogger(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), text: () => lines.join('') };
}

/** A port on 127.0.0.1 where nothing listens. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** POST /api/v1/whatsapp/templates with the app's token. */
export function postTemplate(app: TestApp, body: object, query = '') {
  return app.http.post(`/api/v1/whatsapp/templates${query}`).set('Authorization', `Token ${app.token}`).send(body);
}

/** The sends recorded for a recipient, once the rows of sends already answered are written. */
export async function recordedSends(app: TestApp, recipient: string) {
  await app.deps.whatsapp.settle();
  return app.deps.db.whatsappSend.findMany({ where: { recipient } });
}

/** Runs `work` against an app of its own with these settings, and stops it afterwards. */
export async function withTestApp<T>(env: Record<string, string>, work: (app: TestApp) => Promise<T>): Promise<T> {
  const app = await startTestApp({ env });
  try {
    return await work(app);
  } finally {
    await app.stop();
  }
}
