// The baseline for the WhatsApp benchmark: the least a proxy can do. node:http in; the body parsed and
// the Cloud API message built by the companion's own payload builder; one call over keep-alive through
// undici, the leanest of Node's HTTP clients; the upstream's status and body handed back. No Express,
// authentication, validation, log line, metrics or record. UPSTREAM_URL is the Cloud API's messages URL.
import http from 'node:http';
import { Agent, request } from 'undici';
import { buildCloudTemplateMessage } from '../src/partners/whatsapp-payloads';
import { serveForBench } from './serve';

const upstreamUrl = process.env.UPSTREAM_URL!;
const agent = new Agent({ connections: 256, keepAliveTimeout: 60_000 });

async function forward(body: string): Promise<{ status: number; text: string }> {
  const { to, template } = JSON.parse(body) as { to: string; template: { name: string; language: string; params: string[] } };
  const message = buildCloudTemplateMessage({ to, name: template.name, language: template.language, params: template.params });
  const answer = await request(upstreamUrl, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', authorization: process.env.UPSTREAM_AUTHORIZATION ?? '' },
    body: JSON.stringify(message),
  });
  return { status: answer.statusCode, text: await answer.body.text() };
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    forward(Buffer.concat(chunks).toString('utf8')).then(
      ({ status, text }) => res.writeHead(status, { 'content-type': 'application/json' }).end(text),
      (error: unknown) => res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(error) })),
    );
  });
});
serveForBench(server, 'bare proxy');
