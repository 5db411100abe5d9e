import { z } from 'zod';

/** What Google's userinfo endpoint says about the person signing in, as far as access depends on it. */
export interface GoogleIdentity {
  email: string | undefined;
  emailVerified: boolean;
  /** The `hd` claim: set by Google only for Google Workspace accounts, to the Workspace's domain. */
  hostedDomain: string | undefined;
  name: string | undefined;
  /** The `sub` claim: the Google account itself, which keeps it whatever its address becomes. */
  subject: string | undefined;
}

export interface AccessRules {
  /** Workspace domains whose verified accounts may sign in. */
  domains: readonly string[];
  /** Addresses that may always sign in, as admins. */
  adminEmails: readonly string[];
}

export type AccessDecision = { allowed: true; email: string; configuredAdmin: boolean } | { allowed: false; reason: string };

const userinfoSchema = z.object({
  email: z.string().trim().toLowerCase().optional(),
  // Google sends a boolean; some providers send the string "true".
  email_verified: z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')]).optional(),
  hd: z.string().trim().toLowerCase().optional(),
  name: z.string().optional(),
  sub: z.string().optional(),
});

/** `jane@example.org` → `example.org`. */
export function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1);
}

export function identityFromUserinfo(json: unknown): GoogleIdentity {
  const parsed = userinfoSchema.safeParse(json);
  const claims = parsed.success ? parsed.data : {};
  return {
    email: claims.email || undefined,
    emailVerified: claims.email_verified === true,
    hostedDomain: claims.hd || undefined,
    name: claims.name,
    subject: claims.sub || undefined,
  };
}

/**
 * Who may sign in. The address must be verified by Google; then either it is one of ADMIN_EMAILS, or
 * the account belongs to an allowed Workspace domain. The domain is Google's `hd` claim, never the
 * address's suffix: a consumer Google account can be opened with any address, verified or not.
 */
export function decideAccess(identity: GoogleIdentity, rules: AccessRules): AccessDecision {
  const { email } = identity;
  if (!email) return { allowed: false, reason: 'Google did not tell us the email address of the account you chose.' };
  if (!identity.emailVerified) {
    return { allowed: false, reason: `Google has not verified the address ${email}. Verify it with Google first, or use your work account.` };
  }
  if (rules.adminEmails.includes(email)) return { allowed: true, email, configuredAdmin: true };
  if (identity.hostedDomain && rules.domains.includes(identity.hostedDomain)) return { allowed: true, email, configuredAdmin: false };
  return {
    allowed: false,
    reason: identity.hostedDomain
      ? `${email} belongs to the Google Workspace of ${identity.hostedDomain}, which may not use these pages. Sign in with your programme account.`
      : `${email} is a personal Google account. These pages are open to the programme's Google Workspace accounts only: sign in with your work account.`,
  };
}

/**
 * The `hd` hint for Google's account chooser: the domain when there is one, `*` (any Workspace) for
 * several, none when an ADMIN_EMAILS address lies outside them (the hint would hide that account).
 */
export function hostedDomainHint(rules: AccessRules): string | undefined {
  if (rules.domains.length === 0) return undefined;
  const outside = rules.adminEmails.some((email) => !rules.domains.includes(domainOf(email)));
  if (outside) return undefined;
  return rules.domains.length === 1 ? rules.domains[0] : '*';
}
