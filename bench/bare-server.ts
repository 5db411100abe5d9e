// The baseline for the ingestion benchmark: Express parsing the same JSON and answering 202, storing nothing.
import express from 'express';

const app = express();
app.use(express.json({ limit: '256kb', type: () => true }));
app.post('/api/v1/optouts', (req, res) => {
  res.status(202).json({ id: 'bare', contact_id: (req.body as { contact?: { uuid?: string } }).contact?.uuid, status: 'queued' });
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0, msg: 'bare: listening' })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
