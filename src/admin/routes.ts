import path from 'node:path';
import express, { Router } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import { AUDIT_ACTIONS, type AuditAction } from '../audit/log';
import { hostedDomainHint } from '../auth/access';
import { createPassport } from '../auth/google';
import { createCsrf, requireRole, requireStaff } from '../auth/guard';
import { authRoutes } from '../auth/routes';
import { limitSessions, sessionMiddleware } from '../auth/sessions';
import { missingSignInSettings } from '../config';
import type { Deps } from '../deps';
import { AppError } from '../errors';
import { errorHandlerWith } from '../http/errors';
import { parseOrThrow } from '../http/validate';
import { errorPage, notConfiguredPage } from '../pages/messages';
import { sendPage } from '../pages/send';
import { isStorableText } from '../shared/text';
import { lastDays } from './chart';
import { flowPages } from './flow-routes';
import { numberSearchLimit } from './number-search';
import { optoutPages } from './optout-routes';
import { pageContextFor, type PageContextFor } from './page-context';
import { apiClientPages, staffPages } from './people-routes';
import { optionalText, pageCountOf, pageNumber, pageOf } from './queries';
import { overviewPage } from './views/overview';
import { auditPage } from './views/records';
import { whatsappPages } from './whatsapp-routes';

/** The stylesheet and icon; the same path from src/admin and from dist/admin. */
const STATIC_DIR = path.resolve(__dirname, '../../static');
const CHART_DAYS = 30;
const STAFF_PATHS = ['/admin', '/auth'];

/**
 * Security headers for the staff pages. The pages run no script at all and load only their own
 * stylesheet and icon, so the policy allows nothing else.
 */
function securityHeaders(publicUrl: string | undefined) {
  const https = Boolean(publicUrl?.startsWith('https:'));
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        ...(https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: https,
    xFrameOptions: { action: 'deny' },
  });
}

/** A query or form value (once, or repeated) that PostgreSQL can take: a NUL in a search or a reason would make it fail (a 500). */
const storableValue = z.string().refine(isStorableText, 'must not contain NUL characters or unpaired surrogates');
const storableValues = z.record(storableValue, z.union([storableValue, z.array(storableValue)]));
/** Every staff page's query and form, checked once as they come in, whatever the route does with them. */
const storableInput = z.object({ query: storableValues, form: storableValues });

function readPages(deps: Deps, pageContext: PageContextFor): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    const now = new Date();
    const since = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (CHART_DAYS - 1)));
    const [counts, daily, oldestQueued, queue] = await Promise.all([
      deps.optoutStore.countsByStatus(),
      deps.optoutStore.dailyCounts(since),
      deps.optoutStore.oldestQueued(),
      deps.optoutQueue.depth().catch((error: unknown) => {
        req.log.warn({ err: error }, 'queue depth unavailable');
        return undefined;
      }),
    ]);
    const days = lastDays(CHART_DAYS, now, daily.received, daily.failed);
    sendPage(res, overviewPage(pageContext(req, 'overview'), { counts, days, queue, oldestQueued, now }));
  });

  const auditQuery = z.object({ actor: optionalText, action: z.enum(Object.keys(AUDIT_ACTIONS) as [AuditAction]).optional().catch(undefined) });
  router.get('/audit', async (req, res) => {
    const query = parseOrThrow(auditQuery, req.query);
    const page = pageNumber.parse(req.query.page);
    const { total, rows } = await deps.audit.list({ actor: query.actor || undefined, action: query.action }, pageOf(page));
    sendPage(res, auditPage(pageContext(req, 'audit'), { query, rows, total, page, pageCount: pageCountOf(total) }));
  });

  return router;
}

/**
 * The staff pages (/admin) and Google sign-in (/auth): server-rendered HTML behind a session. Every
 * page needs a signed-in staff member, every form a CSRF token, and each action its role.
 */
export function staffRoutes(deps: Deps): Router {
  const { config } = deps;
  const settings = config.staffSignIn;
  const router = Router();
  router.use(STAFF_PATHS, securityHeaders(settings.publicUrl));
  router.use('/admin/static', express.static(STATIC_DIR, { index: false, maxAge: '1h' }));

  const missing = missingSignInSettings(config);
  if (missing.length > 0) {
    router.use(STAFF_PATHS, (_req, res) => sendPage(res, notConfiguredPage({}, missing), 503));
    return router;
  }

  const csrf = createCsrf();
  const pageContext = pageContextFor(csrf);
  const passport = createPassport(settings, deps.staff);
  router.use(
    STAFF_PATHS,
    sessionMiddleware({ secret: settings.sessionSecret!, publicUrl: settings.publicUrl, store: deps.sessionStore }),
    passport.initialize(),
    passport.session(),
    limitSessions(),
    express.urlencoded({ extended: false, limit: '64kb' }),
    (req, _res, next) => {
      parseOrThrow(storableInput, { query: req.query, form: req.body ?? {} });
      next();
    },
  );
  router.use('/auth', authRoutes({ passport, audit: deps.audit, logger: deps.logger, csrf, pageContext, hostedDomain: hostedDomainHint(settings) }));

  const limitNumberSearch = numberSearchLimit(deps.audit, config.defaultCountry);
  const admin = Router();
  admin.use(requireStaff, csrf.protect);
  admin.use(
    '/optouts',
    optoutPages({ optouts: deps.optouts, store: deps.optoutStore, audit: deps.audit, pageContext, limitNumberSearch, defaultCountry: config.defaultCountry }),
  );
  admin.use('/api-clients', requireRole('admin'), apiClientPages({ apiClients: deps.apiClients, audit: deps.audit, pageContext }));
  admin.use(
    '/flows',
    requireRole('admin'),
    flowPages({ apiClients: deps.apiClients, audit: deps.audit, pageContext, publicUrl: settings.publicUrl, defaultLanguage: config.whatsapp.defaultLanguage }),
  );
  admin.use('/staff', requireRole('admin'), staffPages({ staff: deps.staff, audit: deps.audit, pageContext }));
  admin.use(
    '/whatsapp',
    whatsappPages({
      whatsappSends: deps.whatsappSends,
      templateSends: deps.templateSends,
      templateSendStore: deps.templateSendStore,
      audit: deps.audit,
      pageContext,
      limitNumberSearch,
      defaultCountry: config.defaultCountry,
    }),
  );
  admin.use(readPages(deps, pageContext));
  router.use('/admin', admin);

  router.use(STAFF_PATHS, () => {
    throw AppError.notFound();
  });
  router.use(
    STAFF_PATHS,
    errorHandlerWith((req, res, answer) => sendPage(res, errorPage(pageContext(req), answer), answer.status)),
  );
  return router;
}
