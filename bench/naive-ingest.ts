// The naive durable baseline for `npm run bench`: the opt-out webhook as a plain Express app would
// write it, on the companion's database and Redis. Per request: one SELECT to check the token against
// its stored SHA-256, one INSERT, one BullMQ `add`, then 202. No batching, no caching, no request log.
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import { Queue } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import pg from 'pg';
import { serveForBench } from './serve';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const queue = new Queue('optouts', { connection: new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null }), prefix: process.env.QUEUE_PREFIX });

interface Webhook {
  contact?: { uuid?: string; urn?: string };
  flow?: { uuid?: string };
  run?: { uuid?: string };
  results?: { optout_reason?: { value?: string; category?: string } };
}

const app = express();
app.use(express.json());
app.post('/api/v1/optouts', async (req, res) => {
  // Tokens are `cmp_<key id>_<secret>`; the row holds the secret's SHA-256.
  const [, keyId, secret] = /^Token cmp_([0-9a-f]{16})_(\S+)$/.exec(req.get('authorization') ?? '') ?? [];
  const client = keyId
    ? (await pool.query<{ id: string; secret_hash: string }>('SELECT id, secret_hash FROM api_clients WHERE key_id = $1 AND revoked_at IS NULL', [keyId])).rows[0]
    : undefined;
  if (!client || client.secret_hash !== createHash('sha256').update(secret!).digest('hex')) {
    res.status(401).json({ error: 'unauthorized' });
    return;
  }
  const body = req.body as Webhook;
  if (!body.contact?.uuid) {
    res.status(400).json({ error: 'contact.uuid is required' });
    return;
  }
  const id = randomUUID();
  await pool.query(
    'INSERT INTO optouts (id, contact_uuid, contact_urn, reason_category, reason_value, flow_uuid, run_uuid, api_client_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [id, body.contact.uuid, body.contact.urn, body.results?.optout_reason?.category, body.results?.optout_reason?.value, body.flow?.uuid, body.run?.uuid, client.id],
  );
  await queue.add('submit', { optoutId: id }, { jobId: id });
  res.status(202).json({ id, contact_id: body.contact.uuid, status: 'queued' });
});
serveForBench(http.createServer(app), 'naive ingest');
