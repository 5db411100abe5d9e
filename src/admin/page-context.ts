import type { Request, Response } from 'express';
import { staffOf, type Csrf } from '../auth/guard';
import { redirectAfterSaving } from '../auth/sessions';
import { hasRole, type StaffMember, type StaffRole } from '../auth/staff';
import type { NavLink, PageContext } from '../pages/layout';

export type Section = 'overview' | 'optouts' | 'whatsapp' | 'template-sends' | 'api-clients' | 'flows' | 'staff' | 'audit';

const SECTIONS: Array<{ key: Section; label: string; path: string; role: StaffRole }> = [
  { key: 'overview', label: 'Overview', path: '/admin', role: 'viewer' },
  { key: 'optouts', label: 'Opt-outs', path: '/admin/optouts', role: 'viewer' },
  { key: 'whatsapp', label: 'WhatsApp sends', path: '/admin/whatsapp', role: 'viewer' },
  { key: 'template-sends', label: 'Queued WhatsApp sends', path: '/admin/whatsapp/queued', role: 'viewer' },
  { key: 'api-clients', label: 'API clients', path: '/admin/api-clients', role: 'admin' },
  { key: 'flows', label: 'Flow generator', path: '/admin/flows', role: 'admin' },
  { key: 'staff', label: 'Staff', path: '/admin/staff', role: 'admin' },
  { key: 'audit', label: 'Audit log', path: '/admin/audit', role: 'viewer' },
];

/** The sections the member's role opens, the page's own marked. */
function navFor(member: StaffMember, section: Section | undefined): NavLink[] {
  return SECTIONS.filter((entry) => hasRole(member, entry.role)).map(({ key, label, path }) => ({ label, path, current: key === section }));
}

/** After a form: a message for the page the browser goes to next. */
export function redirectWithMessage(req: Request, res: Response, location: string, kind: 'ok' | 'error', text: string): Promise<void> {
  req.session.flash = { kind, text };
  return redirectAfterSaving(req, res, location);
}

/** Builds what a page needs of the request: the member and their sections, a CSRF token for its forms, a waiting message. */
export function pageContextFor(csrf: Csrf) {
  return (req: Request, section?: Section): PageContext => {
    const member = staffOf(req);
    const message = req.session?.flash;
    if (message) delete req.session.flash;
    return { member, nav: member && navFor(member, section), csrfToken: member ? csrf.tokenFor(req) : undefined, flash: message };
  };
}

export type PageContextFor = ReturnType<typeof pageContextFor>;
