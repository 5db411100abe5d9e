// Database migrations through Prisma's WebAssembly schema engine, driven over @prisma/adapter-pg:
// the Prisma CLI would need a native schema engine that cannot be downloaded here. The history is
// recorded in `_prisma_migrations` exactly as `prisma migrate deploy` records it.
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory, type SqlDriverAdapter } from '@prisma/driver-adapter-utils';
import * as engineBindings from '@prisma/schema-engine-wasm/schema_engine_bg';
import type { MigrationList, SchemaEngine, SchemaFilter } from '@prisma/schema-engine-wasm/schema_engine_bg';

export const MIGRATIONS_DIR = path.resolve(__dirname, '../../prisma/migrations');
export const NO_FILTER: SchemaFilter = { externalTables: [], externalEnums: [] };
const CONNECT_TIMEOUT_MS = 10_000;

export interface MigrateLogger {
  info(obj: object, msg?: string): void;
}

/** Creates the database named in the URL unless it exists; returns whether it created it. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const { name, maintenanceUrl } = parseDatabaseUrl(databaseUrl);
  try {
    await withClient(databaseUrl, async () => {});
    return false;
  } catch (err) {
    if (pgErrorCode(err) !== '3D000') throw err; // anything but "database does not exist"
  }
  return withClient(maintenanceUrl, async (client) => {
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
      return true;
    } catch (err) {
      // Created by someone else meanwhile (23505: both CREATEs raced on pg_database's unique index).
      if (['42P04', '23505'].includes(pgErrorCode(err) ?? '')) return false;
      throw err;
    }
  });
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const { name, maintenanceUrl } = parseDatabaseUrl(databaseUrl);
  await withClient(maintenanceUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`),
  );
}

/** The migrations folder in the shape the engine expects (as the Prisma CLI reads it). */
export function readMigrationList(migrationsDir: string): MigrationList {
  const lockPath = path.join(migrationsDir, 'migration_lock.toml');
  const entries = fs.existsSync(migrationsDir) ? fs.readdirSync(migrationsDir, { withFileTypes: true }) : [];
  return {
    baseDir: migrationsDir,
    lockfile: { path: 'migration_lock.toml', content: fs.existsSync(lockPath) ? fs.readFileSync(lockPath, 'utf8') : null },
    shadowDbInitScript: '',
    migrationDirectories: entries
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort((a, b) => a.localeCompare(b))
      .map((dir) => {
        const file = path.join(migrationsDir, dir, 'migration.sql');
        return {
          path: dir,
          migrationFile: {
            path: 'migration.sql',
            content: fs.existsSync(file)
              ? { tag: 'ok' as const, value: fs.readFileSync(file, 'utf8') }
              : { tag: 'error' as const, value: `${file} does not exist` },
          },
        };
      }),
  };
}

/**
 * Runs `fn` with a schema engine connected to `databaseUrl`. With `useAsShadow`, that database (a
 * throwaway, and empty) also serves as the engine's shadow database. Every connection is closed
 * before this returns.
 */
export async function withSchemaEngine<T>(
  databaseUrl: string,
  options: { schema?: { path: string; content: string }; useAsShadow?: boolean },
  fn: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  const SchemaEngineClass = loadSchemaEngine();
  // One connection, as the native engine uses (an advisory lock must be released by its session).
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  pool.on('error', () => {}); // an idle connection dropped by the server; the next query reports it
  const busy = new Set<pg.PoolClient>();
  pool.on('acquire', (client) => busy.add(client));
  pool.on('release', (_err, client) => busy.delete(client));
  // adapter-pg 7.10 rejects result columns of type "char" (OID 18), which the engine's introspection
  // of pg_constraint selects; pg hands them over as strings, so label them text (OID 25).
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult> | undefined;
  Object.assign(pool, {
    query: (...args: unknown[]) =>
      query(...args)?.then((result) => {
        for (const field of result.fields ?? []) if (field.dataTypeID === 18) field.dataTypeID = 25;
        return result;
      }),
  });
  const pgFactory = new PrismaPg(pool);
  const connect = async (): Promise<SqlDriverAdapter> => {
    const adapter = await pgFactory.connect();
    // adapter-pg runs a script as separate statements cut at every ';', which breaks literals and
    // function bodies. Send it whole, as the native engine does; PostgreSQL then runs it atomically.
    adapter.executeScript = async (script) => {
      await adapter.executeRaw({ sql: script, args: [], argTypes: [] });
    };
    return adapter;
  };
  const factory = bindMigrationAwareSqlAdapterFactory({
    provider: pgFactory.provider,
    adapterName: pgFactory.adapterName,
    connect,
    connectToShadowDb: () =>
      options.useAsShadow ? connect() : Promise.reject(new Error('No shadow database for this operation')),
  });
  const datamodels: [string, string][] | undefined = options.schema && [[options.schema.path, options.schema.content]];
  let engine: SchemaEngine | undefined;
  try {
    engine = await engineCall(SchemaEngineClass.new({ datamodels }, () => {}, factory));
    return await engineCall(fn(engine));
  } finally {
    try {
      engine?.free();
    } catch {
      // only after a crash, already reported
    }
    // A query the engine gave up on (its advisory lock wait times out after 10 s) still holds the
    // connection, and pool.end() would wait for it: close that connection under it.
    for (const client of busy) void client.end().catch(() => {});
    await pool.end();
  }
}

/** Applies every pending migration in prisma/migrations, creating the database first if needed. */
export async function migrateDatabase(databaseUrl: string, log: MigrateLogger): Promise<{ applied: string[] }> {
  const { name } = parseDatabaseUrl(databaseUrl);
  try {
    if (await ensureDatabase(databaseUrl)) log.info({ database: name }, 'created database');
    const migrationsList = readMigrationList(MIGRATIONS_DIR);
    if (migrationsList.migrationDirectories.length === 0) throw new Error(`no migrations in ${MIGRATIONS_DIR}`);
    const { appliedMigrationNames } = await withSchemaEngine(databaseUrl, {}, (engine) =>
      engine.applyMigrations({ migrationsList, filters: NO_FILTER }),
    );
    for (const migration of appliedMigrationNames) log.info({ database: name, migration }, 'applied migration');
    return { applied: appliedMigrationNames };
  } catch (err) {
    throw new Error(`Cannot migrate database "${name}": ${messageOf(err)}`, { cause: err });
  }
}

function parseDatabaseUrl(databaseUrl: string): { name: string; maintenanceUrl: string } {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new Error('Database URL is not a valid URL');
  }
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!name) throw new Error('Database URL does not name a database');
  url.pathname = '/postgres';
  return { name, maintenanceUrl: url.toString() };
}

// Not `instanceof Error`: under Jest, errors from Node's own modules come from another realm.
function messageOf(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}

function pgErrorCode(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => {}); // reported by the pending query instead
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

// The project's `lib` has no WebAssembly types; this is the little used here.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  RuntimeError: new () => Error;
};

let engineLoaded = false;
let lastPanic: string | undefined;

// The package's main entry imports its .wasm as an ES module, which Jest cannot load. Instantiating
// the wasm for the JS bindings ourselves works the same under Node and Jest.
function loadSchemaEngine(): typeof SchemaEngine {
  if (!engineLoaded) {
    const dir = path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg'));
    const wasmModule = new WebAssembly.Module(fs.readFileSync(path.join(dir, 'schema_engine_bg.wasm')));
    const imports: Record<string, unknown> = { ...engineBindings };
    // The engine arms a 10 s timer around its advisory lock and never clears it: don't let it hold
    // the process open (the lock query itself does while it waits).
    for (const name of Object.keys(imports).filter((key) => key.startsWith('__wbg_setTimeout_'))) {
      imports[name] = (callback: () => void, ms: number) => setTimeout(callback, ms >>> 0).unref();
    }
    const instance = new WebAssembly.Instance(wasmModule, { './schema_engine_bg.js': imports });
    engineBindings.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    // The bindings report a Rust panic's message here before the wasm traps.
    Object.assign(globalThis, { PRISMA_WASM_PANIC_REGISTRY: { set_message: (msg: string) => (lastPanic = msg) } });
    engineLoaded = true;
  }
  return engineBindings.SchemaEngine;
}

/** Says that a failure came from the engine; a trap (a Rust panic) gets the panic's message. */
async function engineCall<T>(promise: Promise<T>): Promise<T> {
  lastPanic = undefined;
  try {
    return await promise;
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) {
      throw new Error(`Schema engine crashed: ${lastPanic ?? err.message}`, { cause: err });
    }
    throw new Error(`Schema engine error: ${messageOf(err)}`, { cause: err });
  }
}
