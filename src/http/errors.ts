import type { ErrorRequestHandler, RequestHandler } from 'express';
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

/** How long a caller should wait before trying again while PostgreSQL is away. */
const DATABASE_RETRY_AFTER_S = '5';

export const notFound: RequestHandler = (_req, res) => {
  res.status(404).json({ error: 'not found' });
};

/** The one place where errors become answers. Anything unexpected is logged and answered 500 without details. */
export const errorHandler: ErrorRequestHandler = (error: unknown, req, res, _next) => {
  if (res.headersSent) {
    req.log.error({ err: error }, 'error after the answer had started');
    res.destroy();
    return;
  }
  if (error instanceof AppError) {
    res.status(error.status).json({ error: error.publicMessage, ...(error.details ? { details: error.details } : {}) });
    return;
  }
  const bodyError = typeof error === 'object' && error !== null && 'type' in error ? BODY_ERRORS[String(error.type)] : undefined;
  if (bodyError && bodyError.status < 500) {
    res.status(bodyError.status).json({ error: bodyError.error });
    return;
  }
  if (isDatabaseUnavailable(error)) {
    // Nothing was written (or a write was rolled back with its connection): the caller may try again.
    req.log.warn({ err: error }, 'database unavailable');
    res.status(503).set('Retry-After', DATABASE_RETRY_AFTER_S).json({ error: 'database unavailable' });
    return;
  }
  req.log.error({ err: error }, 'unhandled error');
  res.status(500).json({ error: 'internal error' });
};
