import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import express, { type Request, type RequestHandler } from 'express';
import { AppError } from '../errors';

export const BODY_LIMIT = '256kb';

/** JSON is UTF-8 (RFC 8259 §8.1): bytes that are not would be decoded into U+FFFD and stored silently altered. */
function refuseInvalidUtf8(_req: IncomingMessage, _res: unknown, body: Buffer, encoding: string): void {
  if (encoding === 'utf-8' && !isUtf8(body)) throw new Error('body is not valid UTF-8');
}

/**
 * Whether a request's body is to be read as JSON: it declares a JSON media type, or none at all.
 * Express's own `req.is` answers null for a request without a body, false for another type.
 */
function declaresJsonOrNothing(req: Request): boolean {
  return !req.headers['content-type'] || req.is(['json', '+json']) !== false;
}

/**
 * JSON bodies for the webhook API. RapidPro's engine may send no Content-Type: such a body is read
 * as JSON. A body that declares another type is refused rather than guessed at.
 */
export function jsonBody(): RequestHandler[] {
  const refuseOtherTypes: RequestHandler = (req, _res, next) => {
    if (!declaresJsonOrNothing(req)) throw new AppError(415, 'content type must be application/json');
    next();
  };
  return [
    refuseOtherTypes,
    express.json({ limit: BODY_LIMIT, strict: false, type: (req) => declaresJsonOrNothing(req as Request), verify: refuseInvalidUtf8 }),
  ];
}
