import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../src/ops/logger';
import { createMetrics } from '../../src/ops/metrics';
import { AnswerTooLarge, ANSWER_LIMIT_BYTES, createPartnerHttp, isNetworkError, isTimeout, sendJson, USER_AGENT } from '../../src/partners/http-client';
import { closedPortUrl } from '../whatsapp/support';

/** A partner whose every answer is written by `answer`, straight on node:http. */
async function partnerAnswering(answer: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => answer(req, res, body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let connections = 0;
  server.on('connection', () => (connections += 1));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () => server.close(),
  };
}

const client = (timeoutMs = 2000) =>
  createPartnerHttp({ partner: 'test', timeoutMs, headers: { authorization: 'Token secret' }, logger: createLogger({ level: 'silent' }), metrics: createMetrics() });

describe('partner HTTP client', () => {
  it('sends JSON with its headers and reads any status, without following a redirect', async () => {
    let seen: { headers: http.IncomingHttpHeaders; body: string } | undefined;
    const partner = await partnerAnswering((req, res, body) => {
      seen = { headers: req.headers, body };
      res.writeHead(302, { location: 'http://elsewhere.example.org/', 'content-type': 'application/json' }).end('{"moved":true}');
    });
    try {
      const answer = await sendJson(client(), { method: 'POST', url: `${partner.url}/api`, json: { a: 1 } });
      expect(answer).toMatchObject({ status: 302, body: { moved: true }, excerpt: '{"moved":true}' });
      expect(seen?.body).toBe('{"a":1}');
      expect(seen?.headers).toMatchObject({ 'user-agent': USER_AGENT, accept: 'application/json', 'content-type': 'application/json', authorization: 'Token secret' });
      // The answer is read as it comes: no compressed one is asked for.
      expect(seen?.headers['accept-encoding']).toBeUndefined();
    } finally {
      partner.close();
    }
  });

  it('keeps its connection open between calls', async () => {
    const partner = await partnerAnswering((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    try {
      const http = client();
      for (let call = 0; call < 6; call += 1) {
        await sendJson(http, call % 2 === 0 ? { method: 'GET', url: partner.url } : { method: 'POST', url: partner.url, json: {} });
      }
      expect(partner.connections()).toBe(1);
    } finally {
      partner.close();
    }
  });

  it('sends a request once, whatever its answer or failure', async () => {
    let requests = 0;
    const partner = await partnerAnswering((req, res) => {
      requests += 1;
      if (req.url === '/reset') req.socket.destroy();
      else res.writeHead(503, { 'retry-after': '0' }).end();
    });
    try {
      expect(await sendJson(client(), { method: 'GET', url: `${partner.url}/busy` })).toMatchObject({ status: 503 });
      const reset = await sendJson(client(), { method: 'GET', url: `${partner.url}/reset` }).catch((error: unknown) => error);
      expect(isNetworkError(reset) && reset.code).toBe('ECONNRESET');
      expect(requests).toBe(2);
    } finally {
      partner.close();
    }
  });

  it('throws a request it could not make as it is, not as a partner without an answer', async () => {
    const error = await sendJson(client(), { method: 'GET', url: await closedPortUrl(), headers: { 'x-broken': 'a\nb' } }).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(Error);
    expect(isNetworkError(error)).toBe(false);
    expect(error).not.toBeInstanceOf(AnswerTooLarge);
  });

  it('reports a connection closed before the answer as a reset, and a refused one as refused', async () => {
    const partner = await partnerAnswering((req) => req.socket.destroy());
    try {
      const reset = await sendJson(client(), { method: 'GET', url: partner.url }).catch((error: unknown) => error);
      expect(isNetworkError(reset) && reset.code).toBe('ECONNRESET');
    } finally {
      partner.close();
    }
    const refused = await sendJson(client(), { method: 'GET', url: await closedPortUrl() }).catch((error: unknown) => error);
    expect(isNetworkError(refused) && refused.code).toBe('ECONNREFUSED');
  });

  it('gives up at the timeout, headers or not, and says so', async () => {
    const partner = await partnerAnswering((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"slow":');
    });
    try {
      const started = Date.now();
      const error = await sendJson(client(200), { method: 'GET', url: partner.url }).catch((failure: unknown) => failure);
      expect(isTimeout(error)).toBe(true);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      partner.close();
    }
  });

  it.each([
    ['crossing it in its last chunk', 400, (res: http.ServerResponse) => res.writeHead(400).end('x'.repeat(ANSWER_LIMIT_BYTES + 1))],
    ['announcing a larger length', 413, (res: http.ServerResponse) => res.writeHead(413, { 'content-length': ANSWER_LIMIT_BYTES + 1 }).write('x')],
    ['growing past it without end', 200, (res: http.ServerResponse) => res.writeHead(200).write('x'.repeat(ANSWER_LIMIT_BYTES + 1))],
  ])('refuses an answer larger than the limit, keeping its status: %s', async (_case, status, answer) => {
    const partner = await partnerAnswering((_req, res) => answer(res));
    try {
      const started = Date.now();
      const error = await sendJson(client(), { method: 'GET', url: partner.url }).catch((failure: unknown) => failure);
      expect(error).toBeInstanceOf(AnswerTooLarge);
      expect(error).toMatchObject({ status });
      // Cut off as soon as it is known to be too large, not at the timeout.
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      partner.close();
    }
  });
});
