import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { loadConfig } from '../../src/config';
import { createDeps, type Deps } from '../../src/deps';
import { eventually, optoutWebhook } from '../helpers/app';
import { createScratchDatabase, testEnvironment } from '../helpers/env';
import { openhimPartnerEnv, startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { startCompanion, type CompanionProcess } from '../helpers/process';

const OPENHIM_ROUTE = 'POST /ws/rest/v1/nc/optout';
const OPTOUTS = 1000;
const RATE_LIMIT = 100;

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function post(port: number, token: string): Promise<{ status: number; id: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, path: '/api/v1/optouts', method: 'POST', agent, headers: { authorization: `Token ${token}`, 'content-type': 'application/json' } },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, id: (JSON.parse(text) as { id: string }).id }));
      },
    );
    request.on('error', reject);
    request.end(JSON.stringify(optoutWebhook({ urn: 'tel:+27820001001', fields: { facility_code: '123456' } })));
  });
}

describe('many web and worker replicas on one PostgreSQL and Redis', () => {
  let partner: FakePartner;
  let deps: Deps;
  // A database of its own: the workers' reconciler would otherwise queue (and submit) opt-outs that
  // other test files left queued in the shared one.
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  const processes: CompanionProcess[] = [];
  const queuePrefix = `replicas-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    partner = await startFakePartner();
    partner.on(OPENHIM_ROUTE, { status: 202, body: { status: 'ok' }, delayMs: 5 });
    database = await createScratchDatabase('replicas');
    deps = await createDeps(loadConfig(testEnvironment({ QUEUE_PREFIX: queuePrefix, DATABASE_URL: database.url })));
  });
  afterAll(async () => {
    for (const process of processes) process.child.kill('SIGKILL');
    agent.destroy();
    await deps.close();
    await database.drop();
    await partner.stop();
  });

  it(`submits ${OPTOUTS} opt-outs sent to 2 web processes exactly once through 3 workers, within the global rate limit`, async () => {
    const env = {
      QUEUE_PREFIX: queuePrefix,
      DATABASE_URL: database.url,
      ...openhimPartnerEnv(partner),
      OPENHIM_RATE_LIMIT: String(RATE_LIMIT),
      WORKER_CONCURRENCY: '20',
      DATABASE_POOL_SIZE: '5',
    };
    const webs = [1, 2].map(() => startCompanion(['serve', '--role', 'web'], env));
    const workers = [1, 2, 3].map(() => startCompanion(['serve', '--role', 'worker'], env));
    processes.push(...webs, ...workers);
    const ports = await Promise.all(webs.map((web) => web.listening));
    await Promise.all(workers.map((worker) => worker.listening));
    const { token } = await deps.apiClients.create(`replicas-${randomUUID()}`);

    const answers: Array<{ status: number; id: string }> = [];
    for (let sent = 0; sent < OPTOUTS; sent += 50) {
      answers.push(...(await Promise.all(Array.from({ length: 50 }, (_, index) => post(ports[(sent + index) % 2]!, token)))));
    }
    expect(answers.filter((answer) => answer.status !== 202)).toEqual([]);
    const ids = answers.map((answer) => answer.id);

    await eventually(async () => ((await deps.db.optout.count({ where: { id: { in: ids }, status: 'submitted' } })) === OPTOUTS ? true : undefined), 60000, 250);

    const submissions = partner.received(OPENHIM_ROUTE);
    const eids = submissions.map((request) => (request.body as { eid: string }).eid);
    expect(eids).toHaveLength(OPTOUTS);
    expect(new Set(eids)).toEqual(new Set(ids));

    // The rate at the fake over the run. BullMQ's limiter lets each window's share of `limit` start at
    // once (src/jobs/worker.ts limiterFor), so N submissions span at least (N - limit) / limit seconds:
    // the rate leaves out a second's worth, more than the first window's burst. Measured over the whole run, it does not
    // mistake the fake's own event-loop jitter (it shares this busy machine) for bursts.
    const times = submissions.map((request) => request.receivedAt);
    const seconds = (times.at(-1)! - times[0]!) / 1000;
    const rate = (OPTOUTS - RATE_LIMIT) / seconds;
    process.stdout.write(`replicas: ${OPTOUTS} submissions in ${seconds.toFixed(1)} s, ${rate.toFixed(1)}/s against a limit of ${RATE_LIMIT}/s\n`);
    // The limit is a ceiling: how fast the run went below it depends on the machine, and is not this test's claim.
    expect(rate).toBeLessThanOrEqual(RATE_LIMIT * 1.1);

    // Every worker took part (each logs its submissions). A line is written asynchronously, after the
    // row that says submitted: the last few may still be on their way when the rows are all there.
    const submittedBy = () => workers.map((worker) => worker.output().split('\n').filter((line) => line.includes('"msg":"opt-out submitted"')).length);
    const total = (counts: number[]) => counts.reduce((sum, count) => sum + count, 0);
    const counts = await eventually(async () => (total(submittedBy()) >= OPTOUTS ? submittedBy() : undefined), 5000).catch(() => submittedBy());
    expect(total(counts)).toBe(OPTOUTS);
    expect(counts.every((count) => count > 0)).toBe(true);

    for (const process of [...webs, ...workers]) process.child.kill('SIGTERM');
    expect(await Promise.all([...webs, ...workers].map((process) => process.exited))).toEqual([0, 0, 0, 0, 0]);
  }, 120000);
});
