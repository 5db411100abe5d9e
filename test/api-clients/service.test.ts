import { randomUUID } from 'node:crypto';
import { createApiClientService } from '../../src/api-clients/service';
import { parseToken } from '../../src/api-clients/tokens';
import { createDatabase, type Database } from '../../src/db/client';
import { TEST_DATABASE_URL } from '../helpers/env';

let db: Database;
beforeAll(() => {
  db = createDatabase({ url: TEST_DATABASE_URL, poolSize: 2 });
});
afterAll(() => db.$disconnect());

describe('API client tokens', () => {
  it('stores only a hash of the secret', async () => {
    const service = createApiClientService(db);
    const { token, id } = await service.create(`hash-${randomUUID()}`);
    const row = await db.apiClient.findUniqueOrThrow({ where: { id } });
    // The secret is base64url, which may itself hold underscores: split by the token's own pattern.
    const { secret } = parseToken(token)!;
    expect(secret).toHaveLength(43);
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(row.secretHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a revoked token at once in the revoking process, and within the cache time in another', async () => {
    // Long enough to cover a revoke and a lookup on a busy machine before the "still trusted" check.
    const ttlMs = 2000;
    const here = createApiClientService(db, { tokenCacheTtlMs: ttlMs });
    const elsewhere = createApiClientService(db, { tokenCacheTtlMs: ttlMs });
    const { token, name } = await here.create(`revoke-${randomUUID()}`);
    expect(await here.authenticate(token)).toMatchObject({ name });
    expect(await elsewhere.authenticate(token)).toMatchObject({ name });
    const verifiedBy = Date.now(); // elsewhere cached it by now

    expect(await here.revoke(name)).toBe(true);
    expect(await here.authenticate(token)).toBeUndefined();
    // The other process still trusts what it verified a moment ago, but not for longer than the cache time.
    expect(await elsewhere.authenticate(token)).toMatchObject({ name });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, verifiedBy + ttlMs + 50 - Date.now())));
    expect(await elsewhere.authenticate(token)).toBeUndefined();
  });

  it('gives a revoked client\'s name to its replacement, and keeps refusing the revoked token', async () => {
    const service = createApiClientService(db);
    const name = `rotate-${randomUUID()}`;
    const old = await service.create(name);
    await expect(service.create(name)).rejects.toMatchObject({ status: 409, message: `an active API client named "${name}" already exists` });

    expect(await service.revoke(name)).toBe(true);
    const replacement = await service.create(name);
    expect(await service.authenticate(old.token)).toBeUndefined();
    expect(await service.authenticate(replacement.token)).toMatchObject({ id: replacement.id, name });
    expect((await service.list()).filter((client) => client.name === name).map((client) => client.revokedAt === null)).toEqual([false, true]);
  });

  it('never caches a refusal', async () => {
    const service = createApiClientService(db);
    const { token, name } = await service.create(`late-${randomUUID()}`);
    const wrong = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    expect(await service.authenticate(wrong)).toBeUndefined();
    expect(await service.authenticate(token)).toMatchObject({ name });
  });
});
