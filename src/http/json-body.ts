import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import express, { type RequestHandler } from 'express';
import typeis from 'type-is';
import { AppError } from '../errors';

export const BODY_LIMIT = '256kb';

/** JSON is UTF-8 (RFC 8259 §8.1): bytes that are not would be decoded into U+FFFD and stored silently altered. */
function refuseInvalidUtf8(_req: IncomingMessage, _res: unknown, body: Buffer, encoding: string): void {
  if (encoding === 'utf-8' && !isUtf8(body)) throw new Error('body is not valid UTF-8');
}

/**
 * JSON bodies for the webhook API. RapidPro's engine may send no Content-Type: such a body is read
 * as JSON. A body that declares another type is refused rather than guessed at.
 */
export function jsonBody(): RequestHandler[] {
  const isJson = (req: IncomingMessage) => !req.headers['content-type'] || typeis(req, ['json', '+json']) !== false;
  const refuseOtherTypes: RequestHandler = (req, _res, next) => {
    if (typeis.hasBody(req) && !isJson(req)) throw new AppError(415, 'content type must be application/json');
    next();
  };
  return [refuseOtherTypes, express.json({ limit: BODY_LIMIT, strict: false, type: isJson, verify: refuseInvalidUtf8 })];
}
