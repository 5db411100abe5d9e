// A stand-in for the WhatsApp Cloud API for the benchmark: answers every POST with a Cloud API
// success after FAKE_DELAY_MS, as Meta's servers would after their own work. Started by whatsapp.ts
// with fork(); reports its port over IPC and listens on 127.0.0.1 only.
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
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
// Ends with its parent, whatever happens to the parent.
process.on('disconnect', () => process.exit(0));
