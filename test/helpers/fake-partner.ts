import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the fake partner received it. */
export interface ReceivedRequest {
  method: string;
  path: string;
  /** The path with its query string. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  receivedAt: number;
  /** The client's port: requests that share it came over one kept-alive connection. */
  remotePort: number | undefined;
  /** When the exchange ended: the answer was sent, or the caller hung up first. */
  endedAt?: number;
  /** The status answered, when the answer went out before the caller hung up. */
  answeredStatus?: number;
}

export interface FakeAnswer {
  status: number;
  body?: unknown;
  /** Sent as it is instead of `body` as JSON (bytes no JSON encoder would write, say). */
  rawBody?: string;
  headers?: Record<string, string>;
  /** Answer after this long (a hang past the client's timeout, say). */
  delayMs?: number;
}

type Responder = (request: ReceivedRequest) => FakeAnswer;

/**
 * A real HTTP server standing in for a partner API (RapidPro, OpenHIM, DHIS2, WhatsApp).
 * Answers come from per-route queues, then from the route's default.
 */
export class FakePartner {
  readonly requests: ReceivedRequest[] = [];
  private readonly queued = new Map<string, FakeAnswer[]>();
  private readonly defaults = new Map<string, Responder>();
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  private readonly sockets = new Set<import('node:net').Socket>();

  url = '';

  async start(): Promise<this> {
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** `route` is "METHOD /path" (no query string), or "*" for every route that has no answer of its own. */
  on(route: string, responder: Responder | FakeAnswer): this {
    this.defaults.set(route, typeof responder === 'function' ? responder : () => responder);
    return this;
  }

  /** Answers the next requests to `route` with these, in order, before falling back to its default. */
  queue(route: string, ...answers: FakeAnswer[]): this {
    this.queued.set(route, [...(this.queued.get(route) ?? []), ...answers]);
    return this;
  }

  received(route: string): ReceivedRequest[] {
    return this.requests.filter((request) => `${request.method} ${request.path}` === route);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const path = (req.url ?? '/').split('?')[0]!;
    const request: ReceivedRequest = {
      method: req.method ?? 'GET',
      path,
      url: req.url ?? '/',
      headers: req.headers,
      body: text ? safeJson(text) : undefined,
      receivedAt: Date.now(),
      remotePort: req.socket.remotePort,
    };
    this.requests.push(request);
    res.on('close', () => (request.endedAt = Date.now()));
    const route = `${request.method} ${path}`;
    const answer = this.queued.get(route)?.shift() ??
      (this.defaults.get(route) ?? this.defaults.get('*'))?.(request) ?? { status: 404, body: { error: 'no fake route' } };
    // Unref'd: an answer still pending when the test stops the fake must not keep Jest running.
    if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs).unref());
    if (res.destroyed) return;
    res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
    const answerText = answer.rawBody ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
    res.end(answerText, () => (request.answeredStatus = answer.status));
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Partner answers scripted per subject (a contact, a recipient), so that tests sharing one fake never
 * see each other's traffic: `next` gives the subject's next scripted answer, else the fallback.
 */
export class Script {
  private readonly answers = new Map<string, FakeAnswer[]>();
  set(subject: string, ...answers: FakeAnswer[]): void {
    this.answers.set(subject, answers);
  }
  next(subject: string, fallback: FakeAnswer): FakeAnswer {
    return this.answers.get(subject)?.shift() ?? fallback;
  }
}

export async function startFakePartner(): Promise<FakePartner> {
  return new FakePartner().start();
}

/** The partner credentials tests give the companion: none may ever reach a log line (see logs.ts). */
export const PARTNER_SECRETS = {
  rapidproToken: 'rapidpro-secret',
  openhimUsername: 'companion',
  openhimPassword: 'openhim-secret',
  dhis2Token: 'd2pat_secret',
  dhis2Username: 'companion-dhis2',
  dhis2Password: 'dhis2-secret',
  whatsappToken: 'whatsapp-secret',
} as const;

export const OPENHIM_ROUTE = 'POST /ws/rest/v1/nc/optout';
/**
 * Jembi's answer to an accepted NurseConnect opt-out, passed through by OpenHIM: 200 with a JSON body,
 * as praekeltfoundation/ndoh-jsbox's test/fixtures.js ("POST Nurse Optouts to Jembi") has it.
 */
export const JEMBI_OPTOUT_ACCEPTED: FakeAnswer = { status: 200, body: { success: 'true' } };
export const CONTACTS_ROUTE = 'GET /api/v2/contacts.json';

/** The settings of an app whose RapidPro and OpenHIM are both `partner`. */
export function openhimPartnerEnv(partner: Pick<FakePartner, 'url'>): Record<string, string> {
  return {
    RAPIDPRO_URL: partner.url,
    RAPIDPRO_TOKEN: PARTNER_SECRETS.rapidproToken,
    DHIS2_MODE: 'openhim',
    OPENHIM_URL: partner.url,
    OPENHIM_USERNAME: PARTNER_SECRETS.openhimUsername,
    OPENHIM_PASSWORD: PARTNER_SECRETS.openhimPassword,
  };
}
