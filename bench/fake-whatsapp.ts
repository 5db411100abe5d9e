// A stand-in for the WhatsApp Cloud API for `npm run bench:whatsapp`: answers every POST with a Cloud
// API success after FAKE_DELAY_MS, as Meta's servers would after their own work. A process of its own,
// on 127.0.0.1; its "listening" line carries its port (bench/lib.ts startChild reads it).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const delayMs = Number(process.env.FAKE_DELAY_MS ?? 50);
let sent = 0;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let to = '';
    try {
      to = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { to?: unknown }).to ?? '');
    } catch {
      // not JSON: answer all the same
    }
    setTimeout(() => {
      sent += 1;
      const body = JSON.stringify({
        messaging_product: 'whatsapp',
        contacts: [{ input: to, wa_id: to.replace(/^\+/, '') }],
        messages: [{ id: `wamid.bench${process.pid}.${sent}` }],
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }, delayMs);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port, msg: 'fake whatsapp: listening' })}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
