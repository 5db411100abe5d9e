import { Passport } from 'passport';
import { Strategy as GoogleStrategy } from 'passport-google-oauth20';
import type { Config } from '../config';
import { identityFromUserinfo, type GoogleIdentity } from './access';
import type { StaffMember, StaffService } from './staff';

const GOOGLE_SCOPES = ['openid', 'email', 'profile'];

/** Why the verify step turned someone away; passport hands it to the callback route as `info`. */
export interface RefusalInfo {
  refused: true;
  message: string;
  email: string | undefined;
}

/**
 * Who the audit log says was refused. An unverified address may be anyone's (a Google account can be
 * opened with any address), so it is marked as such rather than attributed to its owner.
 */
function refusedAs(identity: GoogleIdentity): string | undefined {
  if (!identity.email) return undefined;
  return identity.emailVerified ? identity.email : `${identity.email} (unverified)`;
}

/**
 * A passport instance of its own (never the global one, so that several apps can live in one
 * process) with Google's OAuth 2.0 strategy: `state` and PKCE kept in the session, the profile read
 * from the userinfo endpoint, and the staff service deciding who comes in. The session holds only
 * the staff member's id; each request loads the member again, so a new role or a removal counts at once.
 */
export function createPassport(settings: Config['staffSignIn'], staff: StaffService) {
  const { google, publicUrl } = settings;
  const passport = new Passport();
  passport.use(
    new GoogleStrategy(
      {
        clientID: google.clientId!,
        clientSecret: google.clientSecret!,
        // Without PUBLIC_URL (development only) passport resolves the path against the request.
        callbackURL: `${publicUrl ?? ''}/auth/google/callback`,
        authorizationURL: google.authorizationUrl,
        tokenURL: google.tokenUrl,
        userProfileURL: google.userinfoUrl,
        scope: GOOGLE_SCOPES,
        state: true,
        pkce: true,
      },
      (_accessToken, _refreshToken, profile, done) => {
        const identity = identityFromUserinfo(profile._json);
        staff.signIn(identity).then((outcome) => {
          if (outcome.kind === 'accepted') done(null, outcome.member);
          else done(null, false, { refused: true, message: outcome.reason, email: refusedAs(identity) } satisfies RefusalInfo);
        }, done);
      },
    ),
  );
  passport.serializeUser((member, done) => done(null, (member as StaffMember).id));
  passport.deserializeUser((id: string, done) => {
    staff.findActive(id).then((member) => done(null, member ?? false), done);
  });
  return passport;
}

export type StaffPassport = ReturnType<typeof createPassport>;
