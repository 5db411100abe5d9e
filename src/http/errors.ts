import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { AppError } from '../errors';

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
}

/** What an error answers, when it is one we expect; undefined for anything else (a logged 500). */
function describeError(error: unknown): ErrorAnswer | undefined {
  if (error instanceof AppError) return { status: error.status, message: error.publicMessage, details: error.details };
  const bodyError = typeof error === 'object' && error !== null && 'type' in error ? BODY_ERRORS[String(error.type)] : undefined;
  if (bodyError && bodyError.status < 500) return { status: bodyError.status, message: bodyError.error };
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
    present(req, res, described ?? { status: 500, message: 'internal error' });
  };
}

export const errorHandler = errorHandlerWith((_req, res, { status, message, details }) => {
  res.status(status).json({ error: message, ...(details ? { details } : {}) });
});
