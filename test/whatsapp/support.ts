import { randomInt, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/ops/logger';
import { startTestApp, type TestApp } from '../helpers/app';

/** A South African mobile number nobody else in the run uses, so that rows and requests are told apart. */
export function freshNumber(): string {
  return `+2782${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;
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
