import type { Request, Response } from 'express';
import type { Csrf } from '../auth/guard';
import { staffOf } from '../auth/guard';
import type { Html } from './html';
import type { PageContext, Section } from './views/layout';

/** Staff pages hold personal data: never cached. */
export function sendPage(res: Response, page: Html, status = 200): void {
  res.status(status).set('Cache-Control', 'no-store').type('html').send(page.value);
}

/** A message for the next page the browser shows (after a form's redirect). */
export function flash(req: Request, kind: 'ok' | 'error', text: string): void {
  req.session.flash = { kind, text };
}

/** Builds what a page needs of the request: the member, a CSRF token for its forms, a waiting message. */
export function pageContextFor(csrf: Csrf) {
  return (req: Request, section?: Section): PageContext => {
    const member = staffOf(req);
    const message = req.session?.flash;
    if (message) delete req.session.flash;
    return { member, csrfToken: member ? csrf.tokenFor(req) : undefined, flash: message, section };
  };
}

export type PageContextFor = ReturnType<typeof pageContextFor>;
