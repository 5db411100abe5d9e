import { Router, type Request } from 'express';
import type { AuthenticateOptionsGoogle } from 'passport-google-oauth20';
import type { AuditLog } from '../audit/log';
import { AppError } from '../errors';
import type { Logger } from '../ops/logger';
import { maskPhonesIn } from '../shared/phone';
import type { PageContext } from '../pages/layout';
import { refusedPage, signedOutPage } from '../pages/messages';
import { sendPage } from '../pages/send';
import type { RefusalInfo, StaffPassport } from './google';
import { safeReturnTo, staffOf, type Csrf } from './guard';
import { markSignedIn, redirectAfterSaving } from './sessions';
import type { StaffMember } from './staff';

/** GET /auth/google, its callback, POST /auth/logout, and the page seen after signing out. */
export function authRoutes(deps: {
  passport: StaffPassport;
  audit: AuditLog;
  logger: Logger;
  csrf: Csrf;
  pageContext: (req: Request) => PageContext;
  /** Google's `hd` hint for the account chooser. */
  hostedDomain: string | undefined;
}): Router {
  const { passport, audit, pageContext } = deps;
  const router = Router();

  const googleOptions: AuthenticateOptionsGoogle = { prompt: 'select_account', ...(deps.hostedDomain ? { hd: deps.hostedDomain } : {}) };
  router.get('/google', passport.authenticate('google', googleOptions));

  router.get('/google/callback', (req, res, next) => {
    const returnTo = req.session.returnTo;
    const finish = (error: unknown, member: StaffMember | false, info?: Partial<RefusalInfo> & { message?: string }) => {
      if (error) {
        deps.logger.warn({ err: error }, 'Google sign-in failed');
        next(new AppError(502, 'Signing in with Google did not complete. Try again in a moment.'));
        return;
      }
      if (!member) {
        if (info?.refused) {
          audit.record({ actor: info.email ?? 'unknown', action: 'sign_in_refused', details: { reason: info.message } }).then(
            () => sendPage(res, refusedPage(pageContext(req), info.message!), 403),
            next,
          );
          return;
        }
        // No state, another browser's state, or "cancel" on Google's page. The message is not shown:
        // on a refusal passport takes it from the callback's error_description, which anyone can write.
        deps.logger.info({ reason: maskPhonesIn(String(info?.message ?? 'no answer from Google')) }, 'Google sign-in not completed');
        next(new AppError(403, 'The sign-in could not be completed: Google did not finish it, or it began in another browser. Start again from the staff pages.'));
        return;
      }
      // passport regenerates the session here: a session id from before sign-in is never reused.
      req.logIn(member, (loginError) => {
        if (loginError) {
          next(loginError);
          return;
        }
        markSignedIn(req);
        audit
          .record({ actor: member.email, action: 'sign_in', details: { role: member.role } })
          .then(() => redirectAfterSaving(req, res, safeReturnTo(returnTo), 302))
          .catch(next);
      });
    };
    passport.authenticate('google', finish)(req, res, next);
  });

  router.post('/logout', deps.csrf.protect, (req, res, next) => {
    const member = staffOf(req);
    req.logout((error) => {
      if (error) {
        next(error);
        return;
      }
      const recorded = member ? audit.record({ actor: member.email, action: 'sign_out' }) : Promise.resolve();
      recorded.then(() => res.redirect(303, '/auth/signed-out'), next);
    });
  });

  router.get('/signed-out', (req, res) => sendPage(res, signedOutPage(pageContext(req))));

  return router;
}
