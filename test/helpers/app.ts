import { randomUUID } from 'node:crypto';
import supertest from 'supertest';
import { loadConfig } from '../../src/config';
import type { Database } from '../../src/db/client';
import { createDeps, type Deps } from '../../src/deps';
import type { Logger } from '../../src/ops/logger';
import { serve, type Role } from '../../src/runtime';
import { testEnvironment } from './env';
import { captureLogs } from './logs';

export interface TestApp {
  deps: Deps;
  /** supertest against the running server. */
  http: ReturnType<typeof supertest>;
  baseUrl: string;
  /** A valid API token, created for this app. */
  token: string;
  /** Every line this app logged (level trace). */
  logs: string[];
  stop(): Promise<void>;
}

/** Starts the real companion (web, and worker for role 'all') on a free port, as `serve` does. */
export async function startTestApp(
  options: { env?: Record<string, string | undefined>; role?: Role; createToken?: boolean; logger?: Logger } = {},
): Promise<TestApp> {
  const config = loadConfig(testEnvironment(options.env));
  // Everything is logged and kept, for the run's log check (global-teardown), unless a test brings its own logger.
  const { logger, lines } = captureLogs();
  const deps = await createDeps(config, { logger: options.logger ?? logger });
  const running = await serve(deps, options.role ?? 'web');
  const token = options.createToken === false ? '' : (await deps.apiClients.create(`test-${randomUUID()}`)).token;
  const baseUrl = `http://127.0.0.1:${running.port}`;
  return { deps, http: supertest(baseUrl), baseUrl, token, logs: lines, stop: () => running.stop() };
}

/** Polls until `check` returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The opt-out row once the worker is done with it: submitted, failed or cancelled. */
export async function settledOptout(app: TestApp, id: string) {
  return eventually(async () => {
    const row = await app.deps.db.optout.findUnique({ where: { id } });
    return row && row.status !== 'queued' ? row : undefined;
  });
}

export function optoutWebhook(overrides: { uuid?: string; urn?: string | null; fields?: Record<string, unknown>; category?: string } = {}) {
  return {
    contact: {
      uuid: overrides.uuid ?? randomUUID(),
      name: 'Jane',
      ...(overrides.urn === null ? {} : { urn: overrides.urn ?? 'whatsapp:27820001001' }),
      ...(overrides.fields ? { fields: overrides.fields } : {}),
    },
    flow: { uuid: 'bead76f5-dac4-4c9d-996c-c62b326e8c0a', name: 'NurseConnect opt-out' },
    results: { optout_reason: { value: 'job change', category: overrides.category ?? 'job_change' } },
    run: { uuid: randomUUID() },
  };
}

/** A queued opt-out row as the intake writes it, for tests that put rows in place without a webhook. */
export function queuedOptoutRow(apiClientId: string, overrides: { id?: string; contactUuid?: string } = {}) {
  return {
    id: overrides.id ?? randomUUID(),
    contactUuid: overrides.contactUuid ?? randomUUID(),
    contactUrn: null,
    contactFields: null,
    reasonCategory: null,
    reasonValue: null,
    flowUuid: null,
    runUuid: null,
    apiClientId,
    idempotencyKey: null,
  };
}

/** Ends the opt-out's lease now, as if the worker holding it had frozen past it. */
export async function expireLease(db: Database, id: string): Promise<void> {
  await db.$executeRaw`UPDATE optouts SET lease_until = now() - interval '1 second' WHERE id = ${id}::uuid`;
}
