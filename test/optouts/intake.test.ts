import { randomUUID } from 'node:crypto';
import { Prisma } from '../../src/db/client';
import { jobIdFor } from '../../src/optouts/queue';
import { optoutWebhookSchema } from '../../src/optouts/schemas';
import { optoutWebhook, queuedOptoutRow, startTestApp, type TestApp } from '../helpers/app';

/** Many webhooks at once go through the intake's group commit: each must still be answered by the contract. */
describe('opt-out intake under concurrent webhooks', () => {
  let app: TestApp;
  let other: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    // A second web process on the same database, as behind a load balancer.
    other = await startTestApp();
  });
  afterAll(async () => {
    await app.stop();
    await other.stop();
  });

  const post = (target: TestApp, body: object, key?: string) => {
    const request = target.http.post('/api/v1/optouts').set('Authorization', `Token ${target.token}`);
    return (key ? request.set('Idempotency-Key', key) : request).send(body);
  };

  it('commits and enqueues every one of 200 distinct opt-outs sent at once', async () => {
    const bodies = Array.from({ length: 200 }, () => optoutWebhook());
    const answers = await Promise.all(bodies.map((body) => post(app, body)));
    expect(answers.map((answer) => answer.status)).toEqual(bodies.map(() => 202));
    const ids = answers.map((answer) => answer.body.id as string);
    expect(new Set(ids).size).toBe(200);
    expect(await app.deps.db.optout.count({ where: { id: { in: ids } } })).toBe(200);
    const jobs = await Promise.all(ids.map((id) => app.deps.optoutQueue.bullQueue.getJob(jobIdFor(id))));
    expect(jobs.every((job) => job !== undefined)).toBe(true);
  });

  it('applies the duplicate rules among webhooks that arrive together, in the order they came', async () => {
    const { id: apiClientId } = (await app.deps.apiClients.authenticate(app.token))!;
    const accept = (body: ReturnType<typeof optoutWebhook>, key?: string) =>
      app.deps.optouts.accept(optoutWebhookSchema.parse(body), { apiClientId, idempotencyKey: key, simulated: false });
    const contact = randomUUID();
    const key = randomUUID();
    // The first two take both write slots, so that the next four wait and go together, in this order.
    const [, , byContact, sameContact, sameKey, unrelated] = await Promise.all([
      accept(optoutWebhook()),
      accept(optoutWebhook()),
      accept(optoutWebhook({ uuid: contact }), key),
      accept(optoutWebhook({ uuid: contact })),
      accept(optoutWebhook(), key),
      accept(optoutWebhook()),
    ]);
    // The same key for another contact is refused: keys are bound to the request they came with.
    expect([byContact, sameContact, sameKey, unrelated].map((result) => result.kind)).toEqual(['created', 'duplicate', 'key-reused', 'created']);
    expect(sameContact).toMatchObject({ optout: { id: (byContact as { optout: { id: string } }).optout.id } });
    expect(await app.deps.db.optout.count({ where: { OR: [{ contactUuid: contact }, { idempotencyKey: key }] } })).toBe(1);
  });

  it('answers a repeat within a batch by what the earlier item became, not with its answer', async () => {
    const { id: apiClientId } = (await app.deps.apiClients.authenticate(app.token))!;
    const accept = (body: ReturnType<typeof optoutWebhook>, key?: string) =>
      app.deps.optouts.accept(optoutWebhookSchema.parse(body), { apiClientId, idempotencyKey: key, simulated: false });
    // Contact C's earlier opt-out (key k1) was submitted; key k2 belongs to another contact's submitted opt-out.
    const contact = randomUUID();
    const [k1, k2] = [randomUUID(), randomUUID()];
    const submitted = (await accept(optoutWebhook({ uuid: contact }), k1)) as { optout: { id: string } };
    const elsewhere = (await accept(optoutWebhook(), k2)) as { optout: { id: string } };
    await app.deps.db.optout.updateMany({ where: { id: { in: [submitted.optout.id, elsewhere.optout.id] } }, data: { status: 'submitted' } });

    // The first two take both write slots, so that the next three wait and go together, in this order:
    // RapidPro resending the old webhook (k1), the contact's new opt-out, and a third webhook for C that
    // reuses the other contact's key.
    const [, , resent, fresh, reusedKey] = await Promise.all([
      accept(optoutWebhook()),
      accept(optoutWebhook()),
      accept(optoutWebhook({ uuid: contact }), k1),
      accept(optoutWebhook({ uuid: contact })),
      accept(optoutWebhook({ uuid: contact }), k2),
    ]);
    expect(resent).toMatchObject({ kind: 'duplicate', optout: { id: submitted.optout.id, status: 'submitted' } });
    expect(fresh).toMatchObject({ kind: 'created', optout: { contactUuid: contact, status: 'queued' } });
    expect(reusedKey).toEqual({ kind: 'key-reused' });
    expect(await app.deps.db.optout.count({ where: { contactUuid: contact, status: 'queued' } })).toBe(1);
    expect(await app.deps.optoutQueue.bullQueue.getJob(jobIdFor((fresh as { optout: { id: string } }).optout.id))).toBeDefined();
  });

  it('keeps one opt-out per contact when two web processes receive the same webhook at once', async () => {
    const body = optoutWebhook();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, index) => post(index % 2 ? other : app, body)));
    expect(answers.filter((answer) => answer.status === 202)).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(19);
    expect(new Set(answers.map((answer) => answer.body.id)).size).toBe(1);
    expect(await app.deps.db.optout.count({ where: { contactUuid: body.contact.uuid } })).toBe(1);
  });

  it('gives queued jobs the queue-wide options (attempts, backoff, retention)', async () => {
    const answer = await post(app, optoutWebhook());
    const job = await app.deps.optoutQueue.bullQueue.getJob(jobIdFor(answer.body.id));
    expect(job?.opts).toMatchObject({ attempts: app.deps.config.optouts.maxAttempts, backoff: { type: 'row' } });
  });
});

describe("the intake's own SQL", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());

  it('answers rows exactly as Prisma reads them: every model field, with the same values and types', async () => {
    const response = await app.http
      .post('/api/v1/optouts')
      .set('Authorization', `Token ${app.token}`)
      .set('Idempotency-Key', randomUUID())
      .send(optoutWebhook({ fields: { facility_code: '123456', weight: 3, nurse: true } }));
    const viaPrisma = await app.deps.db.optout.findUniqueOrThrow({ where: { id: response.body.id } });
    // A repeat of it: the statement answers the earlier row as node-postgres reads it.
    const repeat = { ...queuedOptoutRow(viaPrisma.apiClientId!), contactUuid: viaPrisma.contactUuid, idempotencyKey: viaPrisma.idempotencyKey };
    const { earlier, inserted } = await app.deps.optoutStore.insertUnlessDuplicate([repeat]);
    expect(inserted).toEqual([]);
    const [viaSql] = earlier;
    expect(Object.keys(viaSql!).sort()).toEqual(Object.keys(Prisma.OptoutScalarFieldEnum).sort());
    expect(viaSql).toEqual(viaPrisma);
  });

  it('inserts in one statement only what no earlier opt-out makes a duplicate of, and answers those earlier ones', async () => {
    const { id: apiClientId } = (await app.deps.apiClients.authenticate(app.token))!;
    const store = app.deps.optoutStore;
    const keyed = { ...queuedOptoutRow(apiClientId), idempotencyKey: randomUUID() };
    const queued = queuedOptoutRow(apiClientId);
    const submitted = queuedOptoutRow(apiClientId);
    await store.insertUnlessDuplicate([keyed, queued, submitted]);
    await app.deps.db.optout.update({ where: { id: submitted.id }, data: { status: 'submitted' } });

    const sameKey = { ...queuedOptoutRow(apiClientId), idempotencyKey: keyed.idempotencyKey };
    const sameQueuedContact = queuedOptoutRow(apiClientId, { contactUuid: queued.contactUuid });
    const sameSubmittedContact = queuedOptoutRow(apiClientId, { contactUuid: submitted.contactUuid });
    const unrelated = queuedOptoutRow(apiClientId);
    const { earlier, inserted } = await store.insertUnlessDuplicate([sameKey, sameQueuedContact, sameSubmittedContact, unrelated]);

    expect(earlier.map((row) => row.id).sort()).toEqual([keyed.id, queued.id].sort());
    expect(inserted.map((row) => row.id).sort()).toEqual([sameSubmittedContact.id, unrelated.id].sort());
    const viaPrisma = await app.deps.db.optout.findMany({ where: { id: { in: [...earlier, ...inserted].map((row) => row.id) } } });
    expect([...earlier, ...inserted].sort((a, b) => a.id.localeCompare(b.id))).toEqual(viaPrisma.sort((a, b) => a.id.localeCompare(b.id)));
    expect(await app.deps.db.optout.count({ where: { id: { in: [sameKey.id, sameQueuedContact.id] } } })).toBe(0);
  });
});
