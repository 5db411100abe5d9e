import { z } from 'zod';
import { isCountryCode, type CountryCode } from './shared/phone';

/**
 * Every setting the companion reads, parsed once from the environment into a frozen, typed object.
 * Nothing else in src/ reads process.env. `.env.example` documents each variable.
 */

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();
const optionalUrl = optionalString.pipe(z.url({ protocol: /^https?$/ }).optional());
const wholeNumber = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);
/** `host:port,host:port` → [{ host, port }]. */
const hostPortList = z
  .string()
  .transform((text) => text.split(',').map((entry) => entry.trim()))
  .pipe(z.array(z.string().regex(/^[\w.-]+:\d{1,5}$/, 'must be host:port, comma-separated')).min(1))
  .transform((entries) =>
    entries.map((entry) => {
      const separator = entry.lastIndexOf(':');
      return { host: entry.slice(0, separator), port: Number(entry.slice(separator + 1)) };
    }),
  );

/** A WhatsApp template language: `en`, `pt_BR`, `zh_HK`, `fil` (the codes Meta lists for templates). */
export const WHATSAPP_LANGUAGE = /^[a-z]{2,3}(_[A-Z]{2,4})?$/;
/** The Graph API version the Cloud API is called with unless WHATSAPP_API_VERSION says otherwise. */
const WHATSAPP_DEFAULT_API_VERSION = 'v26.0';
const WHATSAPP_CLOUD_URL = 'https://graph.facebook.com';

/** A comma-separated list, lower-cased, each item checked by `item`. */
const lowerCaseList = (item: z.ZodType<string, string>) =>
  z
    .string()
    .default('')
    .transform((text) => text.split(',').map((part) => part.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(item));

/** Google's own OAuth 2.0 endpoints; tests and staging point GOOGLE_*_URL elsewhere. */
const GOOGLE_ENDPOINTS = {
  authorizationUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
  tokenUrl: 'https://oauth2.googleapis.com/token',
  userinfoUrl: 'https://openidconnect.googleapis.com/v1/userinfo',
};

const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: wholeNumber(3000).pipe(z.number().max(65535)),
  TRUST_PROXY: wholeNumber(0),
  DATABASE_URL: z
    .string()
    .default('postgresql://postgres@127.0.0.1:5432/companion')
    .pipe(z.url({ protocol: /^postgres(ql)?$/ })),
  DATABASE_POOL_SIZE: wholeNumber(10, 1),
  DATABASE_PREPARED_STATEMENTS: z.stringbool().default(true),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379').pipe(z.url({ protocol: /^rediss?$/ })),
  REDIS_SENTINELS: optionalString.pipe(hostPortList.optional()),
  REDIS_SENTINEL_NAME: optionalString,
  REDIS_CLUSTER_NODES: optionalString.pipe(hostPortList.optional()),
  QUEUE_PREFIX: z.string().regex(/^[\w{}-]{1,64}$/, 'letters, digits, _, - and {} only').default('companion'),
  SHUTDOWN_TIMEOUT_MS: wholeNumber(25000, 1),
  METRICS_TOKEN: optionalString,
  METRICS_PORT: optionalString.pipe(z.coerce.number<string | undefined>().int().min(0).max(65535).optional()),

  DEFAULT_COUNTRY: optionalString.pipe(
    z
      .string()
      .toUpperCase()
      .refine((code): code is CountryCode => isCountryCode(code), 'must be an ISO 3166 alpha-2 country code such as ZA')
      .default('ZA'),
  ),

  RAPIDPRO_URL: optionalUrl,
  RAPIDPRO_TOKEN: optionalString,
  PARTNER_TIMEOUT_MS: wholeNumber(15000, 1),

  DHIS2_MODE: z.enum(['openhim', 'tracker']).default('openhim'),
  OPENHIM_URL: optionalUrl,
  OPENHIM_USERNAME: optionalString,
  OPENHIM_PASSWORD: optionalString,
  OPENHIM_SWT_WHATSAPP: wholeNumber(7, 1),
  OPENHIM_SWT_SMS: wholeNumber(1, 1),
  DHIS2_URL: optionalUrl,
  DHIS2_TOKEN: optionalString,
  DHIS2_USERNAME: optionalString,
  DHIS2_PASSWORD: optionalString,
  DHIS2_PROGRAM: optionalString,
  DHIS2_PROGRAM_STAGE: optionalString,
  DHIS2_ORG_UNIT: optionalString,
  DHIS2_ORG_UNIT_ID_SCHEME: z.enum(['UID', 'CODE']).default('UID'),
  DHIS2_DATA_ELEMENTS: optionalString.pipe(
    z
      .string()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be a JSON object of field name to data element UID' });
          return z.NEVER;
        }
      })
      .pipe(z.record(z.string(), z.string().regex(/^[a-zA-Z][a-zA-Z0-9]{10}$/, 'must be DHIS2 UIDs')))
      .optional(),
  ),

  WHATSAPP_API: z.enum(['cloud', 'onprem']).default('cloud'),
  WHATSAPP_URL: optionalUrl,
  WHATSAPP_API_VERSION: optionalString.pipe(z.string().regex(/^v\d+\.\d+$/, 'must look like v26.0').default(WHATSAPP_DEFAULT_API_VERSION)),
  WHATSAPP_PHONE_NUMBER_ID: optionalString.pipe(z.string().regex(/^\d+$/, 'must be the numeric phone number ID').optional()),
  WHATSAPP_TOKEN: optionalString,
  WHATSAPP_NAMESPACE: optionalString,
  WHATSAPP_DEFAULT_LANGUAGE: optionalString.pipe(
    z.string().regex(WHATSAPP_LANGUAGE, 'must be a WhatsApp language code such as en or pt_BR').default('en'),
  ),
  WHATSAPP_TIMEOUT_MS: wholeNumber(10000, 1),
  WHATSAPP_CONTACT_CHECK: z.stringbool().default(true),
  WHATSAPP_SEND_RATE: optionalString.pipe(z.coerce.number<string | undefined>().positive().default(80)),
  WHATSAPP_SEND_MAX_ATTEMPTS: wholeNumber(8, 1),
  WHATSAPP_SEND_BACKOFF_MS: wholeNumber(10000, 1),

  PUBLIC_URL: optionalUrl,
  SESSION_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  GOOGLE_CLIENT_ID: optionalString,
  GOOGLE_CLIENT_SECRET: optionalString,
  GOOGLE_AUTHORIZATION_URL: optionalUrl,
  GOOGLE_TOKEN_URL: optionalUrl,
  GOOGLE_USERINFO_URL: optionalUrl,
  ADMIN_GOOGLE_DOMAINS: lowerCaseList(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/, 'must be domain names, comma-separated')),
  ADMIN_EMAILS: lowerCaseList(z.email('must be email addresses, comma-separated')),

  OPTOUT_MAX_ATTEMPTS: wholeNumber(12, 1),
  OPTOUT_BACKOFF_MS: wholeNumber(30000, 1),
  WORKER_CONCURRENCY: wholeNumber(10, 1),
  OPENHIM_RATE_LIMIT: optionalString.pipe(z.coerce.number<string>().positive().optional()),
  WORKER_LOCK_MS: wholeNumber(30000, 1000),
  RECONCILE_INTERVAL_MS: wholeNumber(60000, 100),
  RECONCILE_GRACE_MS: wholeNumber(30000),

  AUTH_FAILURE_LIMIT: wholeNumber(20, 1),
  AUTH_FAILURE_WINDOW_MS: wholeNumber(15 * 60 * 1000, 1000),
})
  .superRefine((env, ctx) => {
    if (env.REDIS_SENTINELS && env.REDIS_CLUSTER_NODES) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: 'set either REDIS_SENTINELS or REDIS_CLUSTER_NODES, not both' });
    }
    if (env.REDIS_SENTINELS && !env.REDIS_SENTINEL_NAME) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINEL_NAME'], message: 'required with REDIS_SENTINELS (the name of the monitored primary)' });
    }
  });

type Environment = z.infer<typeof environmentSchema>;

/** Every variable the companion reads; `.env.example` documents each (a test keeps the two in step). */
export const CONFIG_VARIABLES = Object.keys(environmentSchema.shape);

const SIX_HOURS_MS = 6 * 60 * 60 * 1000;
const ONE_HOUR_MS = 60 * 60 * 1000;

function shape(env: Environment) {
  return {
    env: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    port: env.PORT,
    /** Proxies in front (load balancers, ingress) whose X-Forwarded-For and -Proto are believed. */
    trustedProxies: env.TRUST_PROXY,
    databaseUrl: env.DATABASE_URL,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    databasePreparedStatements: env.DATABASE_PREPARED_STATEMENTS,
    redis: {
      url: env.REDIS_URL,
      sentinels: env.REDIS_SENTINELS,
      sentinelName: env.REDIS_SENTINEL_NAME,
      clusterNodes: env.REDIS_CLUSTER_NODES,
    },
    // In Redis Cluster every key of a queue must hash to one slot: BullMQ's documented `{prefix}` form.
    queuePrefix: env.REDIS_CLUSTER_NODES && !env.QUEUE_PREFIX.includes('{') ? `{${env.QUEUE_PREFIX}}` : env.QUEUE_PREFIX,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    metricsToken: env.METRICS_TOKEN,
    /** A port of its own for /metrics (and /healthz), apart from PORT. */
    metricsPort: env.METRICS_PORT,
    partnerTimeoutMs: env.PARTNER_TIMEOUT_MS,
    /** The country of phone numbers written without their country code (`082 000 1002`). */
    defaultCountry: env.DEFAULT_COUNTRY,
    rapidpro: { url: env.RAPIDPRO_URL, token: env.RAPIDPRO_TOKEN },
    dhis2: {
      mode: env.DHIS2_MODE,
      openhim: {
        url: env.OPENHIM_URL,
        username: env.OPENHIM_USERNAME,
        password: env.OPENHIM_PASSWORD,
        /** NurseConnect's `swt` for opt-outs that came over WhatsApp, and over anything else (SMS). */
        swt: { whatsapp: env.OPENHIM_SWT_WHATSAPP, sms: env.OPENHIM_SWT_SMS },
      },
      tracker: {
        url: env.DHIS2_URL,
        token: env.DHIS2_TOKEN,
        username: env.DHIS2_USERNAME,
        password: env.DHIS2_PASSWORD,
        program: env.DHIS2_PROGRAM,
        programStage: env.DHIS2_PROGRAM_STAGE,
        orgUnit: env.DHIS2_ORG_UNIT,
        /** How DHIS2 reads the event's org unit (facility code or DHIS2_ORG_UNIT): as a UID or as a code. */
        orgUnitIdScheme: env.DHIS2_ORG_UNIT_ID_SCHEME,
        dataElements: env.DHIS2_DATA_ELEMENTS ?? {},
      },
    },
    whatsapp: {
      api: env.WHATSAPP_API,
      url: env.WHATSAPP_URL ?? (env.WHATSAPP_API === 'cloud' ? WHATSAPP_CLOUD_URL : undefined),
      apiVersion: env.WHATSAPP_API_VERSION,
      phoneNumberId: env.WHATSAPP_PHONE_NUMBER_ID,
      token: env.WHATSAPP_TOKEN,
      namespace: env.WHATSAPP_NAMESPACE,
      defaultLanguage: env.WHATSAPP_DEFAULT_LANGUAGE,
      timeoutMs: env.WHATSAPP_TIMEOUT_MS,
      /** On-prem: ask /v1/contacts for the wa_id before sending (API v2.39 and later do without). */
      contactCheck: env.WHATSAPP_CONTACT_CHECK,
    },
    staffSignIn: {
      publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ''),
      sessionSecret: env.SESSION_SECRET,
      google: {
        clientId: env.GOOGLE_CLIENT_ID,
        clientSecret: env.GOOGLE_CLIENT_SECRET,
        authorizationUrl: env.GOOGLE_AUTHORIZATION_URL ?? GOOGLE_ENDPOINTS.authorizationUrl,
        tokenUrl: env.GOOGLE_TOKEN_URL ?? GOOGLE_ENDPOINTS.tokenUrl,
        userinfoUrl: env.GOOGLE_USERINFO_URL ?? GOOGLE_ENDPOINTS.userinfoUrl,
      },
      domains: env.ADMIN_GOOGLE_DOMAINS,
      adminEmails: env.ADMIN_EMAILS,
    },
    optouts: {
      maxAttempts: env.OPTOUT_MAX_ATTEMPTS,
      backoffMs: env.OPTOUT_BACKOFF_MS,
      maxBackoffMs: SIX_HOURS_MS,
      workerConcurrency: env.WORKER_CONCURRENCY,
      /** Submissions per second across all workers (BullMQ's global limiter); undefined: no limit. */
      rateLimitPerSecond: env.OPENHIM_RATE_LIMIT,
    },
    /** What every queue of rows (opt-outs, template sends) shares: its workers' lock and its reconciler. */
    jobs: {
      workerLockMs: env.WORKER_LOCK_MS,
      reconcileIntervalMs: env.RECONCILE_INTERVAL_MS,
      reconcileGraceMs: env.RECONCILE_GRACE_MS,
    },
    /** Queued template sends (POST /api/v1/whatsapp/template-sends): their worker and retries. */
    templateSends: {
      /** Sends per second across all workers (BullMQ's global limiter). */
      ratePerSecond: env.WHATSAPP_SEND_RATE,
      maxAttempts: env.WHATSAPP_SEND_MAX_ATTEMPTS,
      backoffMs: env.WHATSAPP_SEND_BACKOFF_MS,
      maxBackoffMs: ONE_HOUR_MS,
    },
    failedAuth: { limit: env.AUTH_FAILURE_LIMIT, windowMs: env.AUTH_FAILURE_WINDOW_MS },
  };
}

type DeepReadonly<T> = { readonly [K in keyof T]: T[K] extends object ? DeepReadonly<T[K]> : T[K] };
export type Config = DeepReadonly<ReturnType<typeof shape>>;

/** Thrown when the environment is unusable; its message has one line per problem, naming the variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty value counts as unset (`PORT=` in a .env file or a container's environment): it takes the default.
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''));
  const parsed = environmentSchema.safeParse(given);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${String(issue.path[0] ?? 'environment')}: ${issue.message}`),
    );
  }
  return deepFreeze(shape(parsed.data));
}

/**
 * Stops start-up, one line per missing variable, when a production process that serves the staff
 * pages (serve --role web or all) lacks their sign-in settings. Nothing else needs them: migrate, the
 * worker and the other commands never sign anyone in, so their secrets need not be handed to them.
 */
export function checkStaffSignIn(config: Pick<Config, 'env' | 'staffSignIn'>): void {
  if (config.env !== 'production') return;
  const missing = missingSignInSettings(config);
  if (missing.length > 0) {
    throw new ConfigError(missing.map((name) => `${name}: required when NODE_ENV=production to serve the staff pages (serve --role web or all)`));
  }
}

/**
 * The staff sign-in settings that are still missing, by variable name. Required in production where
 * the staff pages are served (checkStaffSignIn); in development the staff pages say that sign-in is
 * not configured until they are set. Without PUBLIC_URL (development only) the callback URL is taken
 * from the request's host.
 */
export function missingSignInSettings(config: Pick<Config, 'env' | 'staffSignIn'>): string[] {
  const { google, sessionSecret, publicUrl, domains, adminEmails } = config.staffSignIn;
  const missing: string[] = [];
  if (!google.clientId) missing.push('GOOGLE_CLIENT_ID');
  if (!google.clientSecret) missing.push('GOOGLE_CLIENT_SECRET');
  if (!sessionSecret) missing.push('SESSION_SECRET');
  if (!publicUrl && config.env === 'production') missing.push('PUBLIC_URL');
  if (domains.length === 0 && adminEmails.length === 0) missing.push('ADMIN_GOOGLE_DOMAINS (or ADMIN_EMAILS)');
  return missing;
}

/**
 * The opt-out settings that are still missing, by variable name. The service starts without them
 * (opt-outs are accepted and wait in the queue) but the worker does not submit until they are set.
 * RapidPro's are not among them: only opt-outs that arrive without their contact need it.
 */
export function missingOptoutSettings(config: Config): string[] {
  const missing: string[] = [];
  const { dhis2 } = config;
  if (dhis2.mode === 'openhim') {
    if (!dhis2.openhim.url) missing.push('OPENHIM_URL');
    if (!dhis2.openhim.username) missing.push('OPENHIM_USERNAME');
    if (!dhis2.openhim.password) missing.push('OPENHIM_PASSWORD');
  } else {
    const { tracker } = dhis2;
    if (!tracker.url) missing.push('DHIS2_URL');
    if (!tracker.token && !(tracker.username && tracker.password)) missing.push('DHIS2_TOKEN (or DHIS2_USERNAME and DHIS2_PASSWORD)');
    if (!tracker.program) missing.push('DHIS2_PROGRAM');
    if (!tracker.programStage) missing.push('DHIS2_PROGRAM_STAGE');
  }
  return missing;
}

/**
 * The WhatsApp settings still missing, by variable name. The service starts without them; the
 * template route answers 503 naming them until they are set.
 */
export function missingWhatsappSettings(config: Config): string[] {
  const { whatsapp } = config;
  const required =
    whatsapp.api === 'cloud'
      ? { WHATSAPP_TOKEN: whatsapp.token, WHATSAPP_PHONE_NUMBER_ID: whatsapp.phoneNumberId }
      : { WHATSAPP_URL: whatsapp.url, WHATSAPP_TOKEN: whatsapp.token, WHATSAPP_NAMESPACE: whatsapp.namespace };
  return Object.entries(required)
    .filter(([, value]) => !value)
    .map(([name]) => name);
}
