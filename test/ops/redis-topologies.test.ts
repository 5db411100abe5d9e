import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config';
import { eventually, optoutWebhook, startTestApp } from '../helpers/app';
import { openhimPartnerEnv, startFakePartner, type FakePartner } from '../helpers/fake-partner';
import { startPrivateRedis, startRedisCluster, startSentinel } from '../helpers/redis-server';

const OPENHIM_ROUTE = 'POST /ws/rest/v1/nc/optout';

/** Accepts one opt-out through the app and waits until the worker has submitted it. */
async function submitsThrough(env: Record<string, string>, partner: FakePartner): Promise<string> {
  const app = await startTestApp({ role: 'all', env });
  try {
    const body = optoutWebhook({ urn: 'tel:+27820001001', fields: { facility_code: '123456' } });
    const response = await app.http.post('/api/v1/optouts').set('Authorization', `Token ${app.token}`).send(body);
    expect(response.status).toBe(202);
    await eventually(async () => {
      const row = await app.deps.db.optout.findUnique({ where: { id: response.body.id } });
      return row?.status === 'submitted' ? row : undefined;
    });
    expect(partner.received(OPENHIM_ROUTE).filter((request) => (request.body as { eid: string }).eid === response.body.id)).toHaveLength(1);
    return response.body.id as string;
  } finally {
    await app.stop();
  }
}

describe('Redis topologies', () => {
  let partner: FakePartner;
  beforeAll(async () => {
    partner = await startFakePartner();
    partner.on(OPENHIM_ROUTE, { status: 202, body: { status: 'ok' } });
  });
  afterAll(() => partner.stop());

  it('works through Sentinel: the queue lives on the primary the sentinel names', async () => {
    const primary = await startPrivateRedis();
    const sentinel = await startSentinel(primary.port, 'companion-primary');
    try {
      await submitsThrough({ ...openhimPartnerEnv(partner), REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, REDIS_SENTINEL_NAME: 'companion-primary', QUEUE_PREFIX: 'sentinel' }, partner);
      const direct = new Redis(primary.url);
      expect((await direct.keys('sentinel:optouts:*')).length).toBeGreaterThan(0);
      direct.disconnect();
    } finally {
      await sentinel.stop();
      await primary.stop();
    }
  });

  it('works on a Redis Cluster, with the queue prefix in braces so that its keys share one slot', async () => {
    const cluster = await startRedisCluster();
    try {
      expect(loadConfig({ REDIS_CLUSTER_NODES: cluster.nodes, QUEUE_PREFIX: 'cluster' }).queuePrefix).toBe('{cluster}');
      await submitsThrough({ ...openhimPartnerEnv(partner), REDIS_CLUSTER_NODES: cluster.nodes, QUEUE_PREFIX: 'cluster' }, partner);
    } finally {
      await cluster.stop();
    }
  });

  it('refuses Sentinel without a primary name, and Sentinel and Cluster together', () => {
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379' })).toThrow(/REDIS_SENTINEL_NAME: required/);
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'x', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).toThrow(/REDIS_CLUSTER_NODES: set either/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'not a node' })).toThrow(/REDIS_CLUSTER_NODES: must be host:port/);
  });
});
