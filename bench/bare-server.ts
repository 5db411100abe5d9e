// The baseline for the ingestion benchmark: Express parsing the same JSON and answering 202, storing nothing.
import http from 'node:http';
import express from 'express';
import { serveForBench } from './serve';

const app = express();
app.use(express.json({ limit: '256kb', type: () => true }));
app.post('/api/v1/optouts', (req, res) => {
  res.status(202).json({ id: 'bare', contact_id: (req.body as { contact?: { uuid?: string } }).contact?.uuid, status: 'queued' });
});
serveForBench(http.createServer(app), 'bare');
