import type { Request, RequestHandler } from 'express';
import { csrfSync } from 'csrf-sync';
import { AppError } from '../errors';
import { redirectAfterSaving } from './sessions';
import { hasRole, type StaffMember, type StaffRole } from './staff';

/** The signed-in staff member, when there is one. */
export function staffOf(req: Request): StaffMember | undefined {
  return req.user as StaffMember | undefined;
}

/** The signed-in staff member, for routes behind requireStaff. */
export function signedIn(req: Request): StaffMember {
  const member = staffOf(req);
  if (!member) throw AppError.unauthorized();
  return member;
}

/** Without a session every staff page sends the browser to sign in, and back here afterwards. */
export const requireStaff: RequestHandler = async (req, res, next) => {
  if (staffOf(req)) {
    next();
    return;
  }
  if (req.method !== 'GET') {
    res.redirect(303, '/auth/google');
    return;
  }
  req.session.returnTo = req.originalUrl;
  await redirectAfterSaving(req, res, '/auth/google', 302);
};

export function requireRole(role: StaffRole): RequestHandler {
  return (req, _res, next) => {
    const member = signedIn(req);
    if (!hasRole(member, role)) {
      const article = /^[aeiou]/.test(member.role) ? 'an' : 'a';
      throw new AppError(403, `This needs the ${role} role, and you are ${article} ${member.role}. Ask an administrator if you need it.`);
    }
    next();
  };
}

/** The page to go to after signing in: a staff page asked for earlier, never another site. */
export function safeReturnTo(path: string | undefined): string {
  return path && /^\/admin(\/|\?|$)/.test(path) ? path : '/admin';
}

/**
 * Synchroniser-token CSRF protection: every state-changing form carries the session's token in
 * `_csrf`; a POST without it (or with another) is refused with 403.
 */
export function createCsrf() {
  const { generateToken, isRequestValid } = csrfSync({
    getTokenFromRequest: (req) => (req.body as Record<string, unknown> | undefined)?._csrf as string | undefined,
  });
  const protect: RequestHandler = (req, _res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD' && !isRequestValid(req)) {
      throw new AppError(403, 'This form has expired or did not come from these pages. Go back, reload the page and try again.');
    }
    next();
  };
  return { protect, tokenFor: (req: Request) => generateToken(req) };
}

export type Csrf = ReturnType<typeof createCsrf>;
