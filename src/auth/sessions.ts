import connectPgSimple from 'connect-pg-simple';
import session from 'express-session';
import { rateLimit } from 'express-rate-limit';
import type { Request, RequestHandler, Response } from 'express';
import type pg from 'pg';
import { AppError } from '../errors';
import type { Logger } from '../ops/logger';

export const SESSION_COOKIE = 'companion.sid';
/** A session lasts this long after the last request (the cookie is renewed on each). */
const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;
/** However busy, a signed-in session ends this long after signing in: a stolen cookie does not last. */
const SIGNED_IN_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** A session not signed in lasts this long: enough to go through Google's sign-in. */
const SIGN_IN_WINDOW_MS = 10 * 60 * 1000;
/** Requests without a signed-in session that one address may make per window (each may store a session). */
const ANONYMOUS_REQUEST_LIMIT = 200;
const ANONYMOUS_REQUEST_WINDOW_MS = 15 * 60 * 1000;

declare module 'express-session' {
  interface SessionData {
    /** The staff page asked for before signing in, to return to after. */
    returnTo?: string;
    /** One message for the next page, after a form's redirect. */
    flash?: { kind: 'ok' | 'error'; text: string };
    /** When the staff member signed in (ms since the epoch). */
    signedInAt?: number;
  }
}

/**
 * Sessions live in PostgreSQL (table staff_sessions, created by a migration): they survive a Redis
 * restart or flush, and PostgreSQL is already what is backed up. Staff traffic is light.
 */
export function createSessionStore(pool: pg.Pool, logger: Logger): session.Store {
  const PgStore = connectPgSimple(session);
  return new PgStore({
    pool,
    tableName: 'staff_sessions',
    createTableIfMissing: false,
    errorLog: (message: unknown, error: unknown) => logger.error({ err: error }, `session store: ${String(message)}`),
  });
}

export function sessionMiddleware(options: { secret: string; publicUrl: string | undefined; store: session.Store }): RequestHandler {
  return session({
    name: SESSION_COOKIE,
    secret: options.secret,
    store: options.store,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      // Behind TLS (an https PUBLIC_URL) always; otherwise whenever the request came over TLS.
      secure: options.publicUrl?.startsWith('https:') ? true : 'auto',
      maxAge: SESSION_IDLE_MS,
    },
  });
}

/** Marks the session just signed in, for SIGNED_IN_LIFETIME_MS. */
export function markSignedIn(req: Request): void {
  req.session.signedInAt = Date.now();
}

/**
 * Bounds sessions. A signed-in one ends SIGNED_IN_LIFETIME_MS after signing in, whatever its use (one
 * with no sign-in time predates this rule, and ends too). Before sign-in a session holds only the page
 * asked for and Google's state, yet anyone can have one stored: it lasts minutes instead of the
 * signed-in idle time (signing in starts a new one), and one address may make only so many requests
 * without signing in.
 */
export function limitSessions(): RequestHandler {
  const limit = rateLimit({
    windowMs: ANONYMOUS_REQUEST_WINDOW_MS,
    limit: ANONYMOUS_REQUEST_LIMIT,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, _res, next) => next(new AppError(429, 'Too many requests without signing in from this address: try again in a few minutes.')),
  });
  const beforeSignIn: RequestHandler = (req, res, next) => {
    req.session.cookie.maxAge = SIGN_IN_WINDOW_MS;
    limit(req, res, next);
  };
  return (req, res, next) => {
    if (!req.user) {
      beforeSignIn(req, res, next);
      return;
    }
    const signedInAt = req.session.signedInAt ?? 0;
    if (Date.now() - signedInAt < SIGNED_IN_LIFETIME_MS) {
      next();
      return;
    }
    // Signed out (in a new session), the request goes on as anyone's: a page sends them to sign in again.
    req.logout((error) => (error ? next(error) : beforeSignIn(req, res, next)));
  };
}

/**
 * Saves the session, then redirects. express-session would otherwise send the redirect's headers
 * before its store has the session, and the browser's next request could read the old one.
 */
export async function redirectAfterSaving(req: Request, res: Response, location: string, status = 303): Promise<void> {
  await new Promise<void>((resolve, reject) => req.session.save((error) => (error ? reject(error) : resolve())));
  res.redirect(status, location);
}
