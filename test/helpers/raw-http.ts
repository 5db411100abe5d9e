import http from 'node:http';
import net from 'node:net';

/** A POST exactly as given: no Content-Type unless the caller sets one (fetch and supertest always add one). */
export function rawPost(
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: response.statusCode ?? 0, body: parsed, headers: response.headers });
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** The User-Agent mailroom gives webhook calls (core/goflow/engine.go: "Mailroom/" and its major.minor version). */
export const MAILROOM_USER_AGENT = 'Mailroom/10.1';

/** Go's textproto.CanonicalMIMEHeaderKey, as Header.Set writes a name: `content-type` is `Content-Type`. */
const canonicalHeaderKey = (name: string) => name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());

/**
 * The request line's target as Go's net/http writes it for a URL mailroom evaluated: url.Parse cuts
 * the fragment at the first `#` and keeps the query as it is (RawQuery, never escaped); the path is
 * escaped where it holds bytes a path may not (url.EscapedPath).
 */
function goRequestTarget(url: string): { host: string; port: number; target: string } {
  // Only 127.0.0.1 servers are reached: the host is kept for the Host header and the port.
  const withoutFragment = url.split('#')[0]!;
  const match = /^http:\/\/([^/?]+)([^?]*)(?:\?(.*))?$/s.exec(withoutFragment);
  if (!match) throw new Error(`not an http URL this sender knows: ${url}`);
  const [, authority, rawPath, rawQuery] = match as unknown as [string, string, string, string | undefined];
  const path = (rawPath || '/').replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu, (char) => encodeURIComponent(char));
  const port = authority.split(':')[1];
  return { host: authority, port: Number(port ?? 80), target: rawQuery ? `${path}?${rawQuery}` : path };
}

/**
 * Sends a webhook call as RapidPro's mailroom does (goflow's webhook service over Go's net/http), byte
 * for byte on a raw socket: the URL as evaluated, unescaped, in the request line; Host, User-Agent,
 * Content-Length, then the flow's headers and X-Mailroom-Mode (the defaults mailroom gives the headers the
 * flow leaves out) sorted by name, then Accept-Encoding: gzip.
 * The socket stays open until the whole answer is read, as Go's client keeps it.
 */
export function sendAsMailroom(
  call: { method: string; url: string; headers: Record<string, string>; body: string },
  /** `simulation` is RapidPro's flow simulator. */
  mode: 'normal' | 'simulation' = 'normal',
): Promise<{ status: number; body: unknown; headers: Record<string, string> }> {
  const { host, port, target } = goRequestTarget(call.url);
  const headers = new Map<string, string>([['X-Mailroom-Mode', mode]]);
  for (const [name, value] of Object.entries(call.headers)) headers.set(canonicalHeaderKey(name), value);
  const userAgent = headers.get('User-Agent') ?? MAILROOM_USER_AGENT;
  headers.delete('User-Agent');
  const body = Buffer.from(call.body, 'utf8');
  const lines = [`${call.method} ${target} HTTP/1.1`, `Host: ${host}`, `User-Agent: ${userAgent}`];
  // Go writes a length for any body, and a zero one for an empty POST, PUT or PATCH.
  if (body.length > 0 || ['POST', 'PUT', 'PATCH'].includes(call.method)) lines.push(`Content-Length: ${body.length}`);
  for (const name of [...headers.keys()].sort()) lines.push(`${name}: ${headers.get(name)}`);
  lines.push('Accept-Encoding: gzip');
  const request = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), body]);

  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed before a whole answer: ${received.toString('utf8')}`)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = parseAnswer(received);
      if (!answer) return;
      socket.removeAllListeners('close');
      socket.destroy();
      resolve(answer);
    });
    socket.write(request);
  });
}

/** A whole HTTP/1.1 answer (Content-Length or chunked), or undefined while more is to come. */
function parseAnswer(bytes: Buffer): { status: number; body: unknown; headers: Record<string, string> } | undefined {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const [statusLine, ...headerLines] = bytes.subarray(0, headEnd).toString('latin1').split('\r\n');
  const headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  let rest = bytes.subarray(headEnd + 4);
  let body: Buffer;
  if (headers['transfer-encoding'] === 'chunked') {
    const chunks: Buffer[] = [];
    for (;;) {
      const sizeEnd = rest.indexOf('\r\n');
      if (sizeEnd === -1) return undefined;
      const size = parseInt(rest.subarray(0, sizeEnd).toString('latin1'), 16);
      if (rest.length < sizeEnd + 2 + size + 2) return undefined;
      if (size === 0) break;
      chunks.push(rest.subarray(sizeEnd + 2, sizeEnd + 2 + size));
      rest = rest.subarray(sizeEnd + 2 + size + 2);
    }
    body = Buffer.concat(chunks);
  } else {
    const length = Number(headers['content-length'] ?? 0);
    if (rest.length < length) return undefined;
    body = rest.subarray(0, length);
  }
  const text = body.toString('utf8');
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: Number(statusLine!.split(' ')[1]), body: parsed, headers };
}
