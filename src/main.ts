import os from 'node:os';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import pino from 'pino';
import { ConfigError, checkStaffSignIn, loadConfig, type Config } from './config';
import { StartupError, checkPostgres } from './db/connections';
import { migrateDatabase } from './db/migrate';
import { createDeps } from './deps';
import { createLogger, type Logger } from './ops/logger';
import { serve, type Role, type Running } from './runtime';
import { CLI_ACTOR } from './audit/log';
import { AppError } from './errors';
import { staffEmailSchema, staffRoleSchema } from './auth/staff';
import { readFlowForm, webhookOf } from './admin/flow-routes';
import { FlowRefused, flowExportText, generateFlow, type FlowClient } from './flows/generate';

const USAGE = `usage: companion <command> [options]

  migrate                                    apply database migrations (creates the database if missing)
  serve --role web|worker|all                run the web server, the worker, or both
  tokens:create --name NAME [--role ROLE]    create an API client; prints its token once, last
  tokens:list                                list API clients (never their secrets)
  tokens:revoke --name NAME                  revoke an API client
  users:grant --email E --role viewer|operator|admin
                                             give a staff member a role (before or after their first sign-in)
  flows:export --webhook optout|whatsapp-template|whatsapp-template-send --url BASE_URL
               (--token T | --new-client NAME) [--template NAME] [--language CODE] [--param EXPR]... [--name FLOW_NAME]
                                             print a RapidPro flow export that calls the companion at BASE_URL
                                             (whatsapp-template sends while the flow waits, whatsapp-template-send queues)`;

class UsageError extends Error {}

/** A wrong option of a command whose options are many: said in one line, without the usage. */
class OptionError extends Error {}

/** flows:export's options, named as the flow generator's form fields are. */
const FLOW_OPTION_LABELS: Record<string, string> = {
  webhook: '--webhook',
  template: '--template',
  language: '--language',
  params: '--param',
  client: '--token or --new-client',
  client_name: '--new-client',
  token: '--token',
  flow_name: '--name',
};

/** flows:export's options as the flow generator's form, checked as the form is. */
function flowRequestOf(values: Record<string, unknown>) {
  const { url, token } = values;
  const newClient = values['new-client'];
  if (typeof url !== 'string' || url.trim() === '') throw new OptionError('--url BASE_URL is required: where RapidPro reaches the companion, e.g. https://companion.example.org');
  const baseUrl = URL.parse(url.trim());
  if (!baseUrl || !['http:', 'https:'].includes(baseUrl.protocol) || baseUrl.search || baseUrl.hash || baseUrl.username || baseUrl.password) {
    throw new OptionError(`--url must be an http or https URL without a query, e.g. https://companion.example.org (got "${url}")`);
  }
  if ((token === undefined) === (newClient === undefined)) throw new OptionError('give one of --token T (an active API client\'s token) or --new-client NAME');
  if (values.webhook === 'optout' && (values.template !== undefined || values.language !== undefined || values.param !== undefined)) {
    throw new OptionError('--template, --language and --param are for --webhook whatsapp-template or whatsapp-template-send');
  }
  const form = {
    webhook: values.webhook,
    template: values.template ?? '',
    language: values.language ?? '',
    params: values.param ?? [],
    client: token === undefined ? 'new' : 'existing',
    client_name: newClient,
    token,
    flow_name: values.name ?? '',
  };
  const read = readFlowForm(form, FLOW_OPTION_LABELS);
  if ('problems' in read) throw new OptionError(read.problems.join('; '));
  const { input } = read;
  if (input.client === 'new' && !input.client_name) throw new OptionError('--new-client needs a NAME');
  const client: FlowClient = input.client === 'existing' ? { kind: 'existing', token: input.token } : { kind: 'new', name: input.client_name! };
  return { webhook: webhookOf(input), baseUrl: url.trim(), client, flowName: input.flow_name };
}

function option(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${name} is required`);
  return value.trim();
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The process's log once the configuration is read; until then there is none to write a crash to. */
let processLogger: Logger | undefined;

/**
 * serve and migrate log to stdout, as a service does. The other commands print their results on
 * stdout (tokens:create's token is its last line), so their log (warnings and worse) goes to stderr,
 * written at once so that it keeps its place among their other lines there.
 */
function createProcessLogger(command: string, config: Config): Logger {
  if (command === 'serve' || command === 'migrate') return createLogger({ level: config.logLevel });
  return createLogger({ level: 'warn', destination: pino.destination({ dest: 2, sync: true }) });
}

/**
 * Ends the process over an error that nothing handled: one fatal JSON log line, then exit 1. What
 * state it left is unknown, so the process does not go on; its supervisor starts it afresh.
 */
function crash(error: unknown, message: string): never {
  if (processLogger) processLogger.fatal({ err: error }, message);
  else process.stderr.write(`${message}: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
}

process.on('uncaughtException', (error) => crash(error, 'uncaught exception'));
process.on('unhandledRejection', (reason) => crash(reason, 'unhandled promise rejection'));

async function withDeps<T>(config: Config, logger: Logger, work: (deps: Awaited<ReturnType<typeof createDeps>>) => Promise<T>): Promise<T> {
  await checkPostgres(config.databaseUrl);
  const deps = await createDeps(config, { logger });
  try {
    return await work(deps);
  } finally {
    await deps.close();
  }
}

/** The signals that ask the process to stop: a container's stop, Ctrl-C. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Calls `stop` on a stop signal, from now on. Without a handler, node running as PID 1 (in a
 * container) ignores SIGTERM until it is killed, whatever it is doing: waiting for PostgreSQL or
 * Redis, migrating.
 */
function onStopSignal(stop: (signal: NodeJS.Signals) => void): void {
  for (const signal of STOP_SIGNALS) process.on(signal, () => stop(signal));
}

async function runServe(config: Config, role: Role, logger: Logger): Promise<void> {
  // `serving` is set once PostgreSQL and Redis are connected and serving begins.
  const startUp: { serving?: Promise<Running> } = {};
  let stopping = false;
  // A stop that was asked for exits 0 whatever it had to cut short (the contract): a supervisor that
  // restarts failed processes must not start again one it was told to stop. The log says what was cut.
  onStopSignal((signal) => {
    if (stopping) return;
    stopping = true;
    const { serving } = startUp;
    if (!serving) {
      // Still connecting to PostgreSQL and Redis: nothing was taken on yet, so nothing needs finishing.
      logger.info({ signal }, 'stopped during start-up');
      process.exit(0);
    }
    logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down: finishing in-flight work');
    const deadline = setTimeout(() => {
      logger.error('shutdown took longer than SHUTDOWN_TIMEOUT_MS: exiting with work unfinished (jobs go back to the queue)');
      process.exit(0);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    // Once listening, requests may be in flight even while the worker is still starting: it is let
    // finish starting, then everything stops as usual.
    serving
      .then((running) => running.stop())
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'error while shutting down');
          process.exit(0);
        },
      );
  });
  await checkPostgres(config.databaseUrl);
  const deps = await createDeps(config, { logger });
  startUp.serving = serve(deps, role);
  await startUp.serving;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      role: { type: 'string' },
      name: { type: 'string' },
      email: { type: 'string' },
      webhook: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      'new-client': { type: 'string' },
      template: { type: 'string' },
      language: { type: 'string' },
      param: { type: 'string', multiple: true },
    },
    strict: true,
  });
  if (!command || command === 'help' || command === '--help') {
    out(USAGE);
    return;
  }
  dotenv.config({ quiet: true });
  const config = loadConfig();
  const logger = createProcessLogger(command, config);
  processLogger = logger;
  // serve stops in its own way (runServe); the others are cut short, as a process killed by the signal.
  if (command !== 'serve') onStopSignal((signal) => process.exit(128 + os.constants.signals[signal]));

  switch (command) {
    case 'migrate': {
      await checkPostgres(config.databaseUrl, { databaseMayBeMissing: true });
      const { applied } = await migrateDatabase(config.databaseUrl, logger);
      logger.info({ applied: applied.length }, applied.length ? 'migrations applied' : 'database is up to date');
      return;
    }
    case 'serve': {
      const role = values.role ?? 'all';
      if (role !== 'web' && role !== 'worker' && role !== 'all') throw new UsageError('--role must be web, worker or all');
      if (role !== 'worker') checkStaffSignIn(config);
      await runServe(config, role, logger);
      return;
    }
    case 'tokens:create': {
      const name = option(values, 'name');
      const client = await withDeps(config, logger, (deps) => deps.apiClients.create(name, values.role?.trim() || undefined));
      process.stderr.write(`Created API client "${client.name}" (role ${client.role}). Its token, shown only now:\n`);
      out(client.token);
      return;
    }
    case 'tokens:list': {
      const clients = await withDeps(config, logger, (deps) => deps.apiClients.list());
      if (clients.length === 0) out('no API clients');
      for (const client of clients) {
        const state = client.revokedAt ? `revoked ${client.revokedAt.toISOString()}` : 'active';
        const lastUsed = client.lastUsedAt ? client.lastUsedAt.toISOString() : 'never';
        out(`${client.name}\trole=${client.role}\t${state}\tcreated=${client.createdAt.toISOString()}\tlast_used=${lastUsed}`);
      }
      return;
    }
    case 'tokens:revoke': {
      const name = option(values, 'name');
      const revoked = await withDeps(config, logger, (deps) => deps.apiClients.revoke(name));
      if (!revoked) throw new UsageError(`no active API client named "${name}"`);
      out(`revoked ${name}`);
      return;
    }
    case 'users:grant': {
      const email = staffEmailSchema.safeParse(option(values, 'email'));
      if (!email.success) throw new UsageError('--email must be an email address');
      const role = staffRoleSchema.safeParse(option(values, 'role'));
      if (!role.success) throw new UsageError('--role must be viewer, operator or admin');
      const member = await withDeps(config, logger, async (deps) => {
        const granted = await deps.staff.grant(email.data, role.data);
        await deps.audit.record({ actor: CLI_ACTOR, action: 'staff_grant', target: granted.email, details: { role: granted.role } });
        if (!deps.staff.mayEverSignIn(granted.email)) {
          process.stderr.write(`note: ${granted.email} can sign in only with an account of one of ADMIN_GOOGLE_DOMAINS\n`);
        }
        return granted;
      });
      out(`${member.email} is now ${member.role}`);
      return;
    }
    case 'flows:export': {
      const request = flowRequestOf(values);
      const { flowExport } = await withDeps(config, logger, async (deps) => {
        try {
          return await generateFlow({ apiClients: deps.apiClients, audit: deps.audit }, { ...request, actor: CLI_ACTOR });
        } catch (error) {
          if (!(error instanceof FlowRefused)) throw error;
          throw new OptionError(
            error.reason === 'unknown-token'
              ? '--token does not belong to an active API client: it may be mistyped, or its client was revoked'
              : `an API client named "${error.clientName}" already exists: choose another --new-client NAME, or pass its --token`,
          );
        }
      });
      process.stdout.write(flowExportText(flowExport));
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    for (const problem of error.problems) process.stderr.write(`configuration error: ${problem}\n`);
  } else if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
  } else if (error instanceof StartupError || error instanceof AppError || error instanceof OptionError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    crash(error, 'unexpected error');
  }
  process.exit(1);
});
