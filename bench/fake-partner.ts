// The partner for the benchmarks, a process of its own on 127.0.0.1 (so that its work is not the
// companion's, nor the load generator's): answers every POST after FAKE_DELAY_MS, as the partner's
// servers would after their own work. A POST to …/messages gets a WhatsApp Cloud API success for
// its `to`; any other POST gets OpenHIM's 202 {"status":"ok"}. With FAKE_RECORD_CALLS=1 it keeps each
// WhatsApp call's arrival time and `to`, which GET /calls answers with. Its "listening" line carries its
// port (bench/lib.ts startChild reads it).
import http from 'node:http';
import { serveForBench } from './serve';

const delayMs = Number(process.env.FAKE_DELAY_MS ?? 50);
const OPENHIM_ANSWER = JSON.stringify({ status: 'ok' });
const recordCalls = process.env.FAKE_RECORD_CALLS === '1';
/** Each WhatsApp call when recorded: [arrival, ms since the epoch; its `to`]. */
const calls: Array<[number, string]> = [];
let sent = 0;

function recipientOf(body: Buffer): string {
  try {
    return String((JSON.parse(body.toString('utf8')) as { to?: unknown }).to ?? '');
  } catch {
    // not JSON: answer all the same
    return '';
  }
}

function whatsappAnswer(to: string): string {
  return JSON.stringify({
    messaging_product: 'whatsapp',
    contacts: [{ input: to, wa_id: to.replace(/^\+/, '') }],
    messages: [{ id: `wamid.bench${process.pid}.${sent}` }],
  });
}

/**
 * Calls `answer` no sooner than delayMs after `since`. A timer alone may fire early: it counts from
 * the event loop's clock, read when the loop's turn began, which on a busy machine can be tens of
 * milliseconds before the request arrived (seen here: answers after 2 ms instead of 50).
 */
function answerAfterDelay(since: number, answer: () => void): void {
  const left = delayMs - (performance.now() - since);
  if (left <= 0) answer();
  else setTimeout(() => answerAfterDelay(since, answer), Math.ceil(left));
}

const server = http.createServer((req, res) => {
  const arrived = performance.now();
  const arrivedAt = Date.now();
  if (req.method === 'GET' && req.url === '/calls') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(calls));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const whatsapp = req.url?.endsWith('/messages') ?? false;
    const to = whatsapp ? recipientOf(Buffer.concat(chunks)) : '';
    if (whatsapp && recordCalls) calls.push([arrivedAt, to]);
    answerAfterDelay(arrived, () => {
      sent += 1;
      const body = whatsapp ? whatsappAnswer(to) : OPENHIM_ANSWER;
      res.writeHead(whatsapp ? 200 : 202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
});
serveForBench(server, 'fake partner');
