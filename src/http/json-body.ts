import type { IncomingMessage } from 'node:http';
import express, { type RequestHandler } from 'express';
import typeis from 'type-is';
import { AppError } from '../errors';

export const BODY_LIMIT = '256kb';

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
  return [refuseOtherTypes, express.json({ limit: BODY_LIMIT, strict: false, type: isJson })];
}
