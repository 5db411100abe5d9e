import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import { loadConfig } from '../../src/config';
import { createDeps, type Deps } from '../../src/deps';
import { jobIdFor } from '../../src/optouts/queue';
import { eventually, optoutWebhook } from '../helpers/app';
import { TEST_DATABASE_URL, testEnvironment } from '../helpers/env';
import { openhimPartnerEnv, startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { startCompanion } from '../helpers/process';

type Outcome = ({ status: number; id?: string } | { error: string }) & { contactUuid: string };

/** One POST on a fresh connection, so that a closing server can only refuse new ones, not cut answers. */
function post(port: number, token: string, body: ReturnType<typeof optoutWebhook>): Promise<Outcome> {
  const contactUuid = body.contact.uuid;
  return new Promise((resolve) => {
    const payload = JSON.stringify(body);
    const request = http.request(
      { host: '127.0.0.1', port, path: '/api/v1/optouts', method: 'POST', agent: false, headers: { authorization: `Token ${token}`, 'content-type': 'application/json' } },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ contactUuid, status: response.statusCode ?? 0, id: (JSON.parse(text) as { id?: string }).id }));
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ contactUuid, error: error.code ?? error.message }));
    request.end(payload);
  });
}

/** A WhatsApp template send through the companion listening on `port`. */
const sendTemplate = (port: number, token: string, to: string) =>
  fetch(`http://127.0.0.1:${port}/api/v1/whatsapp/templates`, {
    method: 'POST',
    headers: { authorization: `Token ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ to, template: { name: 'hello_world' } }),
  });

describe('graceful shutdown', () => {
  let partner: FakePartner;
  let deps: Deps;
  const queuePrefix = `shutdown-${Date.now()}`;
  const env = () => ({
    QUEUE_PREFIX: queuePrefix,
    ...openhimPartnerEnv(partner),
    WORKER_CONCURRENCY: '4',
    SHUTDOWN_TIMEOUT_MS: '20000',
  });

  beforeAll(async () => {
    partner = await startFakePartner();
    partner.on('GET /api/v2/contacts.json', {
      status: 200,
      body: { results: [{ uuid: 'x', urns: ['tel:+27820001001'], fields: { facility_code: '123456' } }] },
    });
    // Slow enough that SIGTERM finds jobs running.
    partner.on('POST /ws/rest/v1/nc/optout', { status: 202, body: { status: 'ok' }, delayMs: 300 });
    deps = await createDeps(loadConfig(testEnvironment({ QUEUE_PREFIX: queuePrefix })));
  });
  afterAll(async () => {
    await deps.close();
    await partner.stop();
  });

  it('on SIGTERM under load, finishes in-flight requests and jobs, loses nothing and exits 0', async () => {
    const { token } = await deps.apiClients.create(`shutdown-${Date.now()}`);
    const server = startCompanion(['serve', '--role', 'all'], env());
    const port = await server.listening;

    const outcomes: Outcome[] = [];
    const client = async () => {
      for (;;) {
        const outcome = await post(port, token, optoutWebhook());
        outcomes.push(outcome);
        if ('error' in outcome) return;
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await eventually(async () => (outcomes.length >= 150 ? true : undefined), 20000, 10);
    server.child.kill('SIGTERM');
    await Promise.all(clients);
    expect(await server.exited).toBe(0);

    const answered = outcomes.filter((outcome): outcome is Outcome & { status: number; id: string } => 'status' in outcome);
    const errors = outcomes.filter((outcome): outcome is Outcome & { error: string } => 'error' in outcome);
    expect(answered.filter((outcome) => outcome.status !== 202)).toEqual([]);
    // Connections the closing server had not read a request from were refused or reset; none of
    // those requests was accepted, so no accepted opt-out went unanswered.
    expect(errors.filter((error) => !['ECONNREFUSED', 'ECONNRESET'].includes(error.error))).toEqual([]);
    expect(await deps.db.optout.count({ where: { contactUuid: { in: errors.map((error) => error.contactUuid) } } })).toBe(0);

    const ids = answered.map((outcome) => outcome.id);
    const rows = await deps.db.optout.findMany({ where: { id: { in: ids } } });
    expect(rows).toHaveLength(ids.length);
    // No job was abandoned half-way: a row still queued holds no lease and still has its job in Redis.
    for (const row of rows.filter((candidate) => candidate.status === 'queued')) {
      expect(row.leaseUntil).toBeNull();
      expect(await deps.optoutQueue.bullQueue.getJob(jobIdFor(row.id))).toBeDefined();
    }
    expect(server.output()).toMatch(/"msg":"stopped"/);

    // A new worker drains the rest: every accepted opt-out reaches OpenHIM exactly once.
    const worker = startCompanion(['serve', '--role', 'worker'], env());
    await worker.listening;
    await eventually(async () => ((await deps.db.optout.count({ where: { id: { in: ids }, status: 'queued' } })) === 0 ? true : undefined), 60000, 200);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const eids = partner.received('POST /ws/rest/v1/nc/optout').map((request) => (request.body as { eid: string }).eid);
    expect(eids.filter((eid) => ids.includes(eid)).sort()).toEqual([...ids].sort());
  });

  it('on SIGTERM, stops waiting for work in flight after SHUTDOWN_TIMEOUT_MS, says so, and exits 0', async () => {
    const { token } = await deps.apiClients.create(`shutdown-deadline-${Date.now()}`);
    const phoneNumberId = '106540352242923';
    partner.on(`POST /v26.0/${phoneNumberId}/messages`, { status: 200, body: { messages: [{ id: 'wamid.late' }] }, delayMs: 8000 });
    const server = startCompanion(['serve', '--role', 'web'], {
      ...env(),
      SHUTDOWN_TIMEOUT_MS: '500',
      WHATSAPP_URL: partner.url,
      WHATSAPP_TOKEN: 'shutdown-token',
      WHATSAPP_PHONE_NUMBER_ID: phoneNumberId,
    });
    const port = await server.listening;
    const stuck = sendTemplate(port, token, '+27820001009').catch((error: unknown) => error);
    await eventually(async () => (partner.received(`POST /v26.0/${phoneNumberId}/messages`).length > 0 ? true : undefined), 10000, 20);
    const signalled = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(4000);
    expect(server.output()).toMatch(/shutdown took longer than SHUTDOWN_TIMEOUT_MS/);
    await stuck;
  });

  it('on SIGTERM, writes the rows of WhatsApp sends already answered before it exits', async () => {
    const { token } = await deps.apiClients.create(`shutdown-whatsapp-${Date.now()}`);
    partner.on('POST /v26.0/106540352242922/messages', { status: 200, body: { messaging_product: 'whatsapp', messages: [{ id: 'wamid.shutdown' }] } });
    const server = startCompanion(['serve', '--role', 'web'], {
      ...env(),
      WHATSAPP_URL: partner.url,
      WHATSAPP_TOKEN: 'shutdown-token',
      WHATSAPP_PHONE_NUMBER_ID: '106540352242922',
    });
    const port = await server.listening;
    // Another session holds the table, so the rows are still waiting to be written when SIGTERM comes:
    // more sends than the store writes at once, so that some wait behind the others.
    const holder = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await holder.connect();
    const numbers = Array.from({ length: 10 }, (_, index) => `+2782${String(Date.now()).slice(-6)}${index}`);
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE whatsapp_sends IN ACCESS EXCLUSIVE MODE');
      const responses = await Promise.all(numbers.map((to) => sendTemplate(port, token, to)));
      expect(responses.map((response) => response.status)).toEqual(numbers.map(() => 200));
      server.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(server.child.exitCode).toBeNull();
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    expect(await server.exited).toBe(0);
    expect(await deps.db.whatsappSend.count({ where: { recipient: { in: numbers }, messageId: 'wamid.shutdown' } })).toBe(numbers.length);
  });
});

describe('SIGTERM during start-up', () => {
  let silent: net.Server;
  let connections: net.Socket[];
  let silentUrl: string;
  // A "PostgreSQL" that takes connections and never answers: start-up waits on it (for up to 5 s).
  beforeAll(async () => {
    connections = [];
    silent = net.createServer((socket) => connections.push(socket)).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    silentUrl = `postgresql://postgres@127.0.0.1:${(silent.address() as net.AddressInfo).port}/companion`;
  });
  afterAll(async () => {
    for (const socket of connections) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  /** Starts `companion <args>` and resolves once its start-up is waiting on the silent PostgreSQL. */
  async function startWaiting(args: string[]) {
    const waitingBefore = connections.length;
    const server = startCompanion(args, { DATABASE_URL: silentUrl });
    await eventually(async () => (connections.length > waitingBefore ? true : undefined), 10000, 20);
    return server;
  }

  it('serve stops at once, exits 0 and says so, while it waits for PostgreSQL', async () => {
    const server = await startWaiting(['serve', '--role', 'all']);
    const signalled = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(1000);
    expect(server.output()).toMatch(/"signal":"SIGTERM".*"msg":"stopped during start-up"/);
  });

  it('migrate stops at once, as a process killed by SIGTERM (128 + 15: it did not migrate)', async () => {
    const server = await startWaiting(['migrate']);
    const signalled = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(143);
    expect(Date.now() - signalled).toBeLessThan(1000);
  });
});
