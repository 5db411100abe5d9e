import type { Response } from 'express';
import type { Html } from './html';

/** Staff pages hold personal data: never cached. */
export function sendPage(res: Response, page: Html, status = 200): void {
  res.status(status).set('Cache-Control', 'no-store').type('html').send(page.value);
}
