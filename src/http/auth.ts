import type { RequestHandler } from 'express';
import type { ApiClientService, AuthenticatedClient } from '../api-clients/service';
import { AppError } from '../errors';

declare module 'express-serve-static-core' {
  interface Locals {
    apiClient?: AuthenticatedClient;
  }
}

/** `Authorization: Token <token>`, as RapidPro's Call Webhook action sends it. */
export function requireApiToken(clients: ApiClientService): RequestHandler {
  return async (req, res, next) => {
    const match = /^Token\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    const client = match ? await clients.authenticate(match[1]!) : undefined;
    if (!client) throw AppError.unauthorized();
    res.locals.apiClient = client;
    req.log = req.log.child({ apiClient: client.name });
    next();
  };
}

/** The API client that requireApiToken let through. */
export function apiClientOf(locals: { apiClient?: AuthenticatedClient }): AuthenticatedClient {
  if (!locals.apiClient) throw AppError.unauthorized();
  return locals.apiClient;
}
