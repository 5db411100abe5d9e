import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { AppError } from '../errors';
import { isDatabaseUnavailable } from '../db/client';

/** body-parser's error types, as the contract answers them. */
const BODY_ERRORS: Record<string, { status: number; error: string }> = {
  'entity.parse.failed': { status: 400, error: 'invalid JSON' },
  'entity.too.large': { status: 413, error: 'request body too large' },
  'entity.verify.failed': { status: 400, error: 'invalid JSON' },
  'request.aborted': { status: 400, error: 'request aborted' },
  'request.size.invalid': { status: 400, error: 'request body size does not match Content-Length' },
  'encoding.unsupported': { status: 415, error: 'unsupported content encoding' },
  'charset.unsupported': { status: 415, error: 'unsupported charset' },
  'stream.encoding.set': { status: 500, error: 'internal error' },
};

export const notFound: RequestHandler = (_req, res) => {
  res.status(404).json({ error: 'not found' });
};

export interface ErrorAnswer {
  status: number;
  /** Safe to show. */
  message: string;
  details?: AppError['details'];
  headers?: Record<string, string>;
}

/**
 * body-parser passes a decompression failure on as zlib raised it (a gzip, deflate or br body that is
 * not one, or is cut short), with only a 400 status added: `Z_*` from zlib, `ERR__ERROR_*` from brotli.
 */
function isUndecodableBody(error: object): boolean {
  const { status, code } = error as { status?: unknown; code?: unknown };
  return status === 400 && typeof code === 'string' && /^(Z_|ERR__ERROR_)/.test(code);
}

/** How long a caller should wait before trying again while PostgreSQL is away. */
const DATABASE_RETRY_AFTER_S = '5';

/** What an error answers, when it is one we expect; undefined for anything else (a logged 500). */
function describeError(error: unknown): ErrorAnswer | undefined {
  if (error instanceof AppError) return { status: error.status, message: error.publicMessage, details: error.details };
  const bodyError = typeof error === 'object' && error !== null && 'type' in error ? BODY_ERRORS[String(error.type)] : undefined;
  if (bodyError && bodyError.status < 500) return { status: bodyError.status, message: bodyError.error };
  if (typeof error === 'object' && error !== null && isUndecodableBody(error)) return { status: 400, message: 'invalid request body' };
  // A single write either committed or did not; the caller may try again later (an Idempotency-Key,
  // or the one-queued-opt-out-per-contact rule, makes a repeat harmless).
  if (isDatabaseUnavailable(error)) return { status: 503, message: 'database unavailable', headers: { 'Retry-After': DATABASE_RETRY_AFTER_S } };
  return undefined;
}

/**
 * The one place where errors become answers; `present` only chooses the format (JSON for the API,
 * a page for staff). Anything unexpected is logged and answered 500 without details.
 */
export function errorHandlerWith(present: (req: Request, res: Response, answer: ErrorAnswer) => void): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (res.headersSent) {
      req.log.error({ err: error }, 'error after the answer had started');
      res.destroy();
      return;
    }
    const described = describeError(error);
    if (!described) req.log.error({ err: error }, 'unhandled error');
    else if (described.status >= 500) req.log.warn({ err: error }, described.message);
    if (described?.headers) res.set(described.headers);
    present(req, res, described ?? { status: 500, message: 'internal error' });
  };
}

export const errorHandler = errorHandlerWith((_req, res, { status, message, details }) => {
  res.status(status).json({ error: message, ...(details ? { details } : {}) });
});
