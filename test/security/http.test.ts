import { gzipSync } from 'node:zlib';
import { createServer, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { FakeGoogle, signInEnv } from '../helpers/google';
import { rawPost } from '../helpers/raw-http';
import { freshNumber, recordedSends } from '../whatsapp/support';

/**
 * Attacks over HTTP itself: compressed bodies that are not what they claim, upstream answers that
 * cannot be handed back, and X-Forwarded-For from anyone.
 */

let google: FakeGoogle;
let app: TestApp;

beforeAll(async () => {
  google = await new FakeGoogle().start();
  app = await startTestApp({ env: signInEnv(google) });
});
afterAll(async () => {
  await app?.stop();
  await google?.stop();
});

const GARBAGE = Buffer.from('this is not compressed at all');
const FORM = 'application/x-www-form-urlencoded';

describe('a body whose Content-Encoding does not match it', () => {
  const cases = [
    { encoding: 'gzip', body: GARBAGE, status: 400 },
    { encoding: 'deflate', body: GARBAGE, status: 400 },
    { encoding: 'br', body: GARBAGE, status: 400 },
    // A gzip stream cut short: zlib's "unexpected end of file".
    { encoding: 'gzip', body: gzipSync(JSON.stringify(optoutWebhook())).subarray(0, 12), status: 400 },
    { encoding: 'compress', body: GARBAGE, status: 415 },
    { encoding: 'x-made-up', body: GARBAGE, status: 415 },
  ];

  it.each(cases)('is a $status on the API ($encoding)', async ({ encoding, body, status }) => {
    const response = await rawPost(`${app.baseUrl}/api/v1/optouts`, body, {
      'content-type': 'application/json',
      'content-encoding': encoding,
      authorization: `Token ${app.token}`,
    });
    expect(response.status).toBe(status);
    expect(response.body).toEqual({ error: status === 400 ? 'invalid request body' : 'unsupported content encoding' });
  });

  it.each(cases)('is a $status on the staff forms, before signing in ($encoding)', async ({ encoding, body, status }) => {
    for (const path of ['/admin/optouts', '/auth/logout']) {
      const response = await rawPost(`${app.baseUrl}${path}`, body, { 'content-type': FORM, 'content-encoding': encoding });
      expect({ path, status: response.status }).toEqual({ path, status });
    }
  });

  it('still reads a body that is what its Content-Encoding says', async () => {
    const response = await rawPost(`${app.baseUrl}/api/v1/optouts`, gzipSync(JSON.stringify(optoutWebhook())), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      authorization: `Token ${app.token}`,
    });
    expect(response.status).toBe(202);
  });
});

/**
 * An upstream that writes whatever bytes it is given as its answer to every request, once the request
 * has arrived whole (Content-Length, as got sends it), then closes the connection.
 */
async function startRawUpstream(): Promise<{ url: string; answer(bytes: Buffer | string): void; stop(): Promise<void> }> {
  let next: Buffer = Buffer.alloc(0);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length:\s*(\d+)/i.exec(received.subarray(0, end).toString('latin1'))?.[1] ?? 0);
      if (received.length < end + 4 + length) return;
      socket.end(next);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    answer: (bytes) => (next = Buffer.from(bytes)),
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const jsonAnswer = (status: string, body: string | Buffer, extraHeaders = '') =>
  Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}connection: close\r\n\r\n`),
    Buffer.from(body),
  ]);
// The Cloud API's acceptance (developers.facebook.com/docs/whatsapp/cloud-api/reference/messages).
const acceptance = (id: string) => `{"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],"messages":[{"id":"${id}"}]}`;
const DEPTH = 200_000;

describe('a WhatsApp answer that cannot be handed back to RapidPro', () => {
  let upstream: Awaited<ReturnType<typeof startRawUpstream>>;
  let proxy: TestApp;
  beforeAll(async () => {
    upstream = await startRawUpstream();
    proxy = await startTestApp({
      env: { WHATSAPP_URL: upstream.url, WHATSAPP_TOKEN: 'EAAG-raw-upstream-token', WHATSAPP_PHONE_NUMBER_ID: '1065403', WHATSAPP_TIMEOUT_MS: '2000' },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.stop();
  });

  async function send(answer: Buffer | string) {
    upstream.answer(answer);
    const to = freshNumber();
    const response = await proxy.http
      .post('/api/v1/whatsapp/templates')
      .set('Authorization', `Token ${proxy.token}`)
      .send({ to, template: { name: 'appointment_reminder', params: [randomUUID().slice(0, 8)] } });
    const rows = await recordedSends(proxy, to);
    return { response, rows };
  }

  it.each([
    ['a 200 whose body is a deeply nested array', jsonAnswer('200 OK', '['.repeat(DEPTH) + ']'.repeat(DEPTH))],
    ['a 200 whose body is a deeply nested object', jsonAnswer('200 OK', '{"a":'.repeat(DEPTH / 2) + '1' + '}'.repeat(DEPTH / 2))],
    ['a 400 whose body is a deeply nested array', jsonAnswer('400 Bad Request', '['.repeat(DEPTH) + ']'.repeat(DEPTH))],
  ])('answers 502 and records the send for %s', async (_label, answer) => {
    const { response, rows } = await send(answer);
    expect(response.status).toBe(502);
    expect(response.body).toEqual({ error: 'upstream answer cannot be passed on' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 502, messageId: null, error: 'upstream answer cannot be passed on' });
    expect(rows[0]!.upstreamStatus).toBe(Number(answer.toString('latin1', 9, 12)));
  });

  it.each([
    ['a malformed status line', 'HTTP/1.1 2OO OK\r\ncontent-length: 2\r\n\r\n{}'],
    ['no HTTP at all', 'SSH-2.0-OpenSSH_9.6\r\n'],
    ['more headers than are read', jsonAnswer('200 OK', acceptance('wamid.many'), 'x-padding: 0123456789abcdef\r\n'.repeat(3000))],
    ['a body cut short', jsonAnswer('200 OK', acceptance('wamid.short')).subarray(0, -10)],
  ])('answers 502 and records the send for %s', async (_label, answer) => {
    const { response, rows } = await send(answer);
    expect(response.status).toBe(502);
    expect(response.body).toEqual({ error: expect.stringMatching(/^upstream/) });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 502, messageId: null, error: expect.stringMatching(/^upstream/) });
  });

  it('passes on a 200 that follows an informational answer, and one whose body is not UTF-8', async () => {
    const early = await send(`HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n${jsonAnswer('200 OK', acceptance('wamid.early')).toString()}`);
    expect(early.response.status).toBe(200);
    expect(early.rows[0]).toMatchObject({ status: 200, messageId: 'wamid.early' });
    const latin = await send(jsonAnswer('200 OK', Buffer.concat([Buffer.from(acceptance('wamid.x').slice(0, -4)), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')])));
    expect(latin.response.status).toBe(200);
    expect(latin.rows[0]).toMatchObject({ status: 200, messageId: 'wamid.x\uFFFD\uFFFD' });
  });
});

describe('X-Forwarded-For with TRUST_PROXY unset', () => {
  let address = 0;
  const madeUpAddress = () => `203.0.113.${(address += 1) % 250}`;

  it('does not let a rotating address evade the failed-token limit', async () => {
    const limited = await startTestApp({ env: { AUTH_FAILURE_LIMIT: '5', AUTH_FAILURE_WINDOW_MS: '60000' }, createToken: false });
    try {
      const statuses: number[] = [];
      for (let attempt = 0; attempt < 7; attempt += 1) {
        const response = await limited.http
          .post('/api/v1/optouts')
          .set('X-Forwarded-For', madeUpAddress())
          .set('Authorization', 'Token not-a-real-token')
          .send(optoutWebhook());
        statuses.push(response.status);
      }
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    } finally {
      await limited.stop();
    }
  });

  it('does not let a rotating address evade the limit on sign-in sessions', async () => {
    const statuses: number[] = [];
    // The limit is 200 requests without signing in per address (src/auth/sessions.ts).
    for (let attempt = 0; attempt < 202; attempt += 1) {
      statuses.push((await app.http.get('/auth/google').set('X-Forwarded-For', madeUpAddress())).status);
    }
    expect(statuses.slice(-2)).toEqual([429, 429]);
  });
});
