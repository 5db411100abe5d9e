import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { ApiClientService, AuthenticatedClient } from '../api-clients/service';
import { AppError } from '../errors';

declare module 'express-serve-static-core' {
  interface Locals {
    apiClient?: AuthenticatedClient;
  }
}

export interface FailedAuthLimit {
  /** Failed authentications one client address may make per window; the next ones answer 429. */
  limit: number;
  windowMs: number;
}

/**
 * `Authorization: Token <token>`, as RapidPro's Call Webhook action sends it. Three steps: look the
 * token up; count the request against its address only when the token was not good (so a busy
 * RapidPro is never slowed, nor refused for another flow's stale token); refuse it. The client's name
 * goes in the request's log line (app.ts).
 */
export function requireApiToken(clients: ApiClientService, failedAuth: FailedAuthLimit): RequestHandler[] {
  const identify: RequestHandler = async (req, res, next) => {
    const match = /^Token\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    const client = match ? await clients.authenticate(match[1]!) : undefined;
    if (client) res.locals.apiClient = client;
    next();
  };
  // Counted in this process's memory, keyed by the client address (behind one trusted proxy).
  const countFailure = rateLimit({
    windowMs: failedAuth.windowMs,
    limit: failedAuth.limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // Retry-After is set before this runs; the answer goes through the one error mapping.
    handler: (_req, _res, next) => next(new AppError(429, 'too many failed authentications')),
  });
  // The limiter is not even asked about a good token: it is the hot path, and it would skip it anyway.
  const limitFailures: RequestHandler = (req, res, next) => (res.locals.apiClient ? next() : countFailure(req, res, next));
  const refuse: RequestHandler = (_req, res, next) => {
    if (!res.locals.apiClient) throw AppError.unauthorized();
    next();
  };
  return [identify, limitFailures, refuse];
}

/** The API client that requireApiToken let through. */
export function apiClientOf(locals: { apiClient?: AuthenticatedClient }): AuthenticatedClient {
  if (!locals.apiClient) throw AppError.unauthorized();
  return locals.apiClient;
}
