import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startFakePartner, type FakeAnswer, type FakePartner, type ReceivedRequest } from '../helpers/fake-partner';
import { findLeaks } from '../helpers/logs';
import { CONTACTS_ROUTE, OPENHIM_ROUTE, openhimPartnerEnv } from '../helpers/fake-partner';
import { startOwnPostgres, type OwnPostgres } from '../helpers/postgres-server';
import { startRestartableRedis, type RestartableRedis } from '../helpers/redis-server';

/**
 * The companion as production runs it, for fault scenarios: the built CLI as separate web and worker
 * processes, over a PostgreSQL and a Redis of the suite's own (so they can be restarted and flushed),
 * with a fake RapidPro and a fake OpenHIM that records every submission by its `eid`.
 */

const MAIN = path.join(__dirname, '..', '..', 'dist', 'main.js');
export const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts', 'faults');

/** Short timings, so that recovery happens within a scenario. */
export const FAULT_SETTINGS = {
  LOG_LEVEL: 'debug',
  PARTNER_TIMEOUT_MS: '1000',
  OPTOUT_BACKOFF_MS: '200',
  OPTOUT_MAX_ATTEMPTS: '30',
  WORKER_CONCURRENCY: '10',
  WORKER_LOCK_MS: '2000',
  RECONCILE_INTERVAL_MS: '2000',
  RECONCILE_GRACE_MS: '3000',
  SHUTDOWN_TIMEOUT_MS: '5000',
};
export const WORKER_CONCURRENCY = Number(FAULT_SETTINGS.WORKER_CONCURRENCY);

/** The shared servers of a fault suite run. */
export interface Infrastructure {
  postgres: OwnPostgres;
  redis: RestartableRedis;
  close(): Promise<void>;
}

export async function startInfrastructure(): Promise<Infrastructure> {
  const [postgres, redis] = await Promise.all([startOwnPostgres(), startRestartableRedis()]);
  return {
    postgres,
    redis,
    async close() {
      await redis.stop();
      await postgres.destroy();
    },
  };
}

/** Decides the fake OpenHIM's answer to one submission (the n-th one of its eid, counting from 1). */
export type UpstreamScript = (eid: string, n: number) => FakeAnswer;

/** What OpenHIM answers a submission it took. */
export const ACCEPTED: FakeAnswer = { status: 201, body: { status: 'ok' } };

class Companion {
  readonly lines: string[] = [];
  readonly process: ChildProcess;
  private exitedOnPurpose = false;
  readonly exited: Promise<void>;

  constructor(
    readonly role: 'web' | 'worker',
    env: NodeJS.ProcessEnv,
    private readonly log: fs.WriteStream,
  ) {
    this.process = spawn(process.execPath, [MAIN, 'serve', '--role', role], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    const take = (chunk: Buffer) => {
      pending += chunk.toString();
      const complete = pending.split('\n');
      pending = complete.pop()!;
      for (const line of complete) {
        this.lines.push(line);
        this.log.write(`${role} ${line}\n`);
      }
    };
    this.process.stdout!.on('data', take);
    this.process.stderr!.on('data', take);
    this.exited = once(this.process, 'exit').then(([code, signal]) => {
      if (!this.exitedOnPurpose) this.log.write(`${role} EXITED UNEXPECTEDLY: code ${code} signal ${signal}\n`);
    });
  }

  get crashed(): boolean {
    return this.process.exitCode !== null && !this.exitedOnPurpose;
  }

  async ready(): Promise<number | undefined> {
    const marker = this.role === 'web' ? '"msg":"web: listening"' : '"msg":"worker: submitting opt-outs"';
    const deadline = Date.now() + 20000;
    for (;;) {
      const line = this.lines.find((candidate) => candidate.includes(marker));
      if (line) return (JSON.parse(line) as { port?: number }).port;
      if (this.process.exitCode !== null || Date.now() > deadline) throw new Error(`${this.role} did not start:\n${this.lines.join('\n')}`);
      await sleep(25);
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    this.exitedOnPurpose = true;
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill(signal);
      await this.exited;
    }
  }
}

export interface Delivery {
  eid: string;
  request: ReceivedRequest;
}

/** One scenario's companion: its database, its queue prefix, its web and worker processes. */
export class Cluster {
  web!: Companion;
  /** Every worker process started, the first one that was not killed being the one faults strike. */
  private readonly workers: Companion[] = [];
  baseUrl = '';
  token = '';
  workerKills = 0;
  private readonly submissionsPerEid = new Map<string, number>();

  private constructor(
    readonly name: string,
    readonly infrastructure: Infrastructure,
    readonly partner: FakePartner,
    private readonly env: NodeJS.ProcessEnv,
    readonly db: pg.Pool,
    private readonly log: fs.WriteStream,
  ) {}

  static async start(name: string, infrastructure: Infrastructure, script: UpstreamScript): Promise<Cluster> {
    const slug = name.replace(/\W+/g, '_');
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const log = fs.createWriteStream(path.join(ARTIFACTS, `${slug}.log`));
    const databaseUrl = await infrastructure.postgres.createDatabase(`faults_${slug}`.toLowerCase());
    const partner = await startFakePartner();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      PORT: '0',
      DATABASE_URL: databaseUrl,
      REDIS_URL: infrastructure.redis.url,
      QUEUE_PREFIX: `faults-${randomUUID().slice(0, 8)}`,
      ...openhimPartnerEnv(partner),
      ...FAULT_SETTINGS,
    };
    const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    db.on('error', () => undefined); // the PostgreSQL scenario restarts the server under it
    const cluster = new Cluster(name, infrastructure, partner, env, db, log);
    cluster.fakeRapidPro();
    partner.on(OPENHIM_ROUTE, (request) => {
      const { eid } = request.body as { eid: string };
      const n = (cluster.submissionsPerEid.get(eid) ?? 0) + 1;
      cluster.submissionsPerEid.set(eid, n);
      // Some latency, so that submissions are in flight when a fault strikes.
      return { delayMs: 20 + Math.floor(Math.random() * 200), ...script(eid, n) };
    });

    const created = spawnSync(process.execPath, [MAIN, 'tokens:create', '--name', `faults-${name}`], { env, encoding: 'utf8', timeout: 30000 });
    if (created.status !== 0) throw new Error(`tokens:create failed: ${created.stderr}`);
    cluster.token = created.stdout.trimEnd().split('\n').at(-1)!;

    cluster.web = new Companion('web', env, log);
    cluster.baseUrl = `http://127.0.0.1:${await cluster.web.ready()}`;
    await cluster.startWorker();
    return cluster;
  }

  private fakeRapidPro(): void {
    this.partner.on(CONTACTS_ROUTE, (request) => {
      const uuid = new URL(request.url, 'http://x').searchParams.get('uuid');
      return {
        status: 200,
        body: { next: null, previous: null, results: [{ uuid, urns: ['tel:+27820001001'], fields: { facility_code: '123456' } }] },
      };
    });
  }

  async startWorker(): Promise<void> {
    const worker = new Companion('worker', this.env, this.log);
    this.workers.push(worker);
    await worker.ready();
  }

  private get worker(): Companion {
    const live = this.workers.find((worker) => worker.process.exitCode === null && worker.process.signalCode === null);
    if (!live) throw new Error('no worker is running');
    return live;
  }

  /** SIGKILL: no chance to finish or release anything. */
  async killWorker(): Promise<void> {
    await this.worker.kill('SIGKILL');
    this.workerKills += 1;
  }

  /** SIGSTOP: the worker stops dead, holding its jobs and leases, and goes on with them when thawed. */
  freezeWorker(): void {
    this.worker.process.kill('SIGSTOP');
  }

  thawWorker(): void {
    this.worker.process.kill('SIGCONT');
  }

  /** Every submission the fake OpenHIM received, by eid. */
  deliveries(): Delivery[] {
    return this.partner.received(OPENHIM_ROUTE).map((request) => ({ eid: (request.body as { eid: string }).eid, request }));
  }

  /** Processes that ended without being told to. */
  crashes(): string[] {
    return [this.web, ...this.workers].filter((companion) => companion.crashed).map((companion) => companion.role);
  }

  /** Every line the processes logged. */
  logLines(): string[] {
    return [this.web, ...this.workers].flatMap((companion) => companion.lines);
  }

  leaks(): string[] {
    return findLeaks(this.logLines().join('\n'), [this.token]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.web, ...this.workers].map((companion) => companion.kill('SIGTERM')));
    await this.db.end();
    await this.partner.stop();
    await new Promise((resolve) => this.log.end(resolve));
  }
}
