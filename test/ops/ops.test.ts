import supertest from 'supertest';
import { loadConfig } from '../../src/config';
import { createDeps } from '../../src/deps';
import { serve, type Role } from '../../src/runtime';
import { optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { APP_SECRETS, testEnvironment } from '../helpers/env';
import { captureLogs } from '../helpers/logs';
import { startPrivateRedis } from '../helpers/redis-server';

describe('operations endpoints', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { METRICS_TOKEN: APP_SECRETS.metricsToken } });
  });
  afterAll(() => app.stop());

  it('answers /healthz while the process runs', async () => {
    const response = await app.http.get('/healthz');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ok' });
  });

  it('answers /readyz 200 when PostgreSQL and Redis answer', async () => {
    const response = await app.http.get('/readyz');
    expect(response.status).toBe(200);
    expect(response.body.checks).toEqual({ postgres: 'ok', redis: 'ok' });
  });

  it('needs the metrics token when one is set', async () => {
    expect((await app.http.get('/metrics')).status).toBe(401);
    expect((await app.http.get('/metrics').set('Authorization', 'Bearer wrong')).status).toBe(401);
    // The right secret under no scheme, or under another one, is not the Bearer token either.
    for (const authorization of [APP_SECRETS.metricsToken, `Token ${APP_SECRETS.metricsToken}`, `Basic ${APP_SECRETS.metricsToken}`]) {
      expect((await app.http.get('/metrics').set('Authorization', authorization)).status).toBe(401);
    }
    expect((await app.http.get('/metrics').set('Authorization', `Bearer ${APP_SECRETS.metricsToken}`)).status).toBe(200);
  });

  it('exposes request, opt-out and queue metrics in Prometheus text', async () => {
    const accepted = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(optoutWebhook());
    expect(accepted.status).toBe(202);
    const response = await app.http.get('/metrics').set('Authorization', `Bearer ${APP_SECRETS.metricsToken}`);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.text).toMatch(/companion_http_requests_total\{method="POST",route="\/api\/v1\/optouts",status="202",service="companion"\} 1/);
    expect(response.text).toMatch(/companion_http_request_duration_seconds_bucket\{le="0.005"/);
    expect(response.text).toMatch(/companion_optouts_accepted_total\{service="companion"\} 1/);
    expect(response.text).toMatch(/companion_queue_jobs\{queue="optouts",state="waiting",service="companion"\} 1/);
  });
});

describe('/readyz when a dependency is down', () => {
  it('answers 503 naming Redis when Redis stops answering', async () => {
    const redis = await startPrivateRedis();
    const app = await startTestApp({ env: { REDIS_URL: redis.url } });
    try {
      await redis.stop();
      const response = await app.http.get('/readyz');
      expect(response.status).toBe(503);
      expect(response.body).toMatchObject({ checks: { postgres: 'ok', redis: 'down' }, error: 'redis not answering' });
    } finally {
      await app.stop();
    }
  });

  it('answers 503 naming PostgreSQL when PostgreSQL does not answer', async () => {
    const app = await startTestApp({ env: { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/companion' }, createToken: false });
    try {
      const response = await app.http.get('/readyz');
      expect(response.status).toBe(503);
      expect(response.body).toMatchObject({ checks: { postgres: 'down', redis: 'ok' }, error: 'postgres not answering' });
      // Liveness is the process alone: a PostgreSQL outage must not get the process restarted.
      const health = await app.http.get('/healthz');
      expect(health.status).toBe(200);
      expect(health.body).toEqual({ status: 'ok' });
    } finally {
      await app.stop();
    }
  });
});

describe('/metrics while Redis is away', () => {
  const queueUp = (value: number) => new RegExp(`^companion_queue_up\\{queue="optouts",service="companion"\\} ${value}$`, 'm');

  it('still answers with every other metric, and companion_queue_up 0 in place of the queue counts', async () => {
    const redis = await startPrivateRedis();
    const app = await startTestApp({ env: { REDIS_URL: redis.url } });
    try {
      const before = await app.http.get('/metrics');
      expect(before.text).toMatch(queueUp(1));
      expect(before.text).toMatch(/^companion_queue_jobs\{queue="optouts",state="waiting",service="companion"\} 0$/m);
      await redis.stop();
      const response = await app.http.get('/metrics');
      expect(response.status).toBe(200);
      expect(response.text).toMatch(queueUp(0));
      expect(response.text).not.toMatch(/^companion_queue_jobs\{/m);
      expect(response.text).toMatch(/^companion_http_requests_total\{method="GET",route="\/metrics",status="200",service="companion"\} 1$/m);
      expect(response.text).toMatch(/^process_cpu_seconds_total\{service="companion"\} /m);
    } finally {
      await app.stop();
      await redis.stop();
    }
  });

  it('does not hold the scrape for a frozen Redis', async () => {
    const redis = await startPrivateRedis();
    const app = await startTestApp({ env: { REDIS_URL: redis.url } });
    try {
      redis.signal('SIGSTOP');
      const started = Date.now();
      const response = await app.http.get('/metrics');
      // The bound is a second; the Redis command timeout it cuts short is two.
      expect(Date.now() - started).toBeLessThan(1800);
      expect(response.status).toBe(200);
      expect(response.text).toMatch(queueUp(0));
    } finally {
      redis.signal('SIGCONT');
      await app.stop();
      await redis.stop();
    }
  });
});

describe('metrics without METRICS_TOKEN', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { METRICS_TOKEN: undefined } });
  });
  afterAll(() => app.stop());

  it('are open to any scraper', async () => {
    const response = await app.http.get('/metrics');
    expect(response.status).toBe(200);
    expect(response.text).toMatch(/^# HELP /m);
  });
});

const METRICS_404_LINE = 'GET /metrics answers 404: NODE_ENV=production without METRICS_TOKEN';

/** The companion as `serve` runs it, with both its ports and its log lines. */
async function serveWith(env: Record<string, string | undefined>, role: Role = 'web') {
  const { logger, lines } = captureLogs();
  const deps = await createDeps(loadConfig(testEnvironment(env)), { logger });
  const running = await serve(deps, role);
  return {
    main: supertest(`http://127.0.0.1:${running.port}`),
    metrics: running.metricsPort === undefined ? undefined : supertest(`http://127.0.0.1:${running.metricsPort}`),
    metricsPort: running.metricsPort,
    lines,
    stop: () => running.stop(),
  };
}

describe('metrics in production', () => {
  it.each<Role>(['web', 'worker'])('answer 404 on PORT without METRICS_TOKEN, and the start-up log says so once (%s)', async (role) => {
    const app = await serveWith({ NODE_ENV: 'production', METRICS_TOKEN: undefined }, role);
    try {
      const response = await app.main.get('/metrics');
      expect(response.status).toBe(404);
      expect(response.body).toEqual({ error: 'not found' });
      expect((await app.main.get('/healthz')).status).toBe(200);
      expect(app.lines.filter((line) => line.includes(METRICS_404_LINE))).toHaveLength(1);
    } finally {
      await app.stop();
    }
  });

  it('are served on METRICS_PORT alone when it is set, with /healthz, and that port closes on stop', async () => {
    const app = await serveWith({ NODE_ENV: 'production', METRICS_TOKEN: undefined, METRICS_PORT: '0' });
    expect(app.metricsPort).toEqual(expect.any(Number));
    try {
      const scraped = await app.metrics!.get('/metrics');
      expect(scraped.status).toBe(200);
      expect(scraped.text).toMatch(/^# HELP /m);
      expect((await app.metrics!.get('/healthz')).body).toEqual({ status: 'ok' });
      for (const path of ['/readyz', '/api/v1/optouts', '/admin']) expect((await app.metrics!.get(path)).status).toBe(404);
      expect((await app.main.get('/metrics')).status).toBe(404);
      expect(app.lines.filter((line) => line.includes(METRICS_404_LINE))).toHaveLength(0);
    } finally {
      await app.stop();
    }
    await expect(app.metrics!.get('/healthz')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('need the token on METRICS_PORT too when one is set', async () => {
    const app = await serveWith({ NODE_ENV: 'production', METRICS_TOKEN: APP_SECRETS.metricsToken, METRICS_PORT: '0' });
    try {
      expect((await app.metrics!.get('/metrics')).status).toBe(401);
      expect((await app.metrics!.get('/metrics').set('Authorization', `Bearer ${APP_SECRETS.metricsToken}`)).status).toBe(200);
    } finally {
      await app.stop();
    }
  });

  it('are served on PORT behind METRICS_TOKEN when it is set', async () => {
    const app = await serveWith({ NODE_ENV: 'production', METRICS_TOKEN: APP_SECRETS.metricsToken });
    try {
      expect((await app.main.get('/metrics')).status).toBe(401);
      expect((await app.main.get('/metrics').set('Authorization', `Bearer ${APP_SECRETS.metricsToken}`)).status).toBe(200);
      expect(app.lines.filter((line) => line.includes(METRICS_404_LINE))).toHaveLength(0);
    } finally {
      await app.stop();
    }
  });
});
