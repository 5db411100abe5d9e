import type { Request, Response } from 'express';
import { staffOf, type Csrf } from '../auth/guard';
import { redirectAfterSaving } from '../auth/sessions';
import type { Html } from './html';
import type { PageContext, Section } from './views/layout';

/** Staff pages hold personal data: never cached. */
export function sendPage(res: Response, page: Html, status = 200): void {
  res.status(status).set('Cache-Control', 'no-store').type('html').send(page.value);
}

/** After a form: a message for the page the browser goes to next. */
export function redirectWithMessage(req: Request, res: Response, location: string, kind: 'ok' | 'error', text: string): Promise<void> {
  req.session.flash = { kind, text };
  return redirectAfterSaving(req, res, location);
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
