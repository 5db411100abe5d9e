import { z } from 'zod';
import type { Database, Prisma } from '../db/client';
import type { StaffMember, StaffRole } from '../generated/prisma/client';
import { AppError } from '../errors';
import { decideAccess, domainOf, type AccessRules, type GoogleIdentity } from './access';

export type { StaffMember, StaffRole };

/** viewer reads; operator also retries and cancels opt-outs; admin also manages API clients and staff. */
export const STAFF_ROLES = ['viewer', 'operator', 'admin'] as const satisfies readonly StaffRole[];

export function hasRole(member: Pick<StaffMember, 'role'>, needed: StaffRole): boolean {
  return STAFF_ROLES.indexOf(member.role) >= STAFF_ROLES.indexOf(needed);
}

export const staffEmailSchema = z.string().trim().toLowerCase().pipe(z.email('must be an email address'));
export const staffRoleSchema = z.enum(STAFF_ROLES);

export type SignInOutcome = { kind: 'accepted'; member: StaffMember } | { kind: 'refused'; reason: string };

export function createStaffService(db: Database, rules: AccessRules) {
  const isConfiguredAdmin = (email: string) => rules.adminEmails.includes(email);
  const alwaysAnAdmin = (email: string) =>
    new AppError(409, `${email} is listed in ADMIN_EMAILS and is always an admin: change the configuration instead.`);
  const notYourself = (what: string) => new AppError(409, `You cannot ${what} yourself: ask another admin.`);

  /**
   * Runs a change made on the staff pages by `actorId`: one such change at a time, and only while the
   * actor is still an active admin. Checked apart from the write, two admins demoting each other at
   * once would both pass and leave no admin; as no one changes themselves, one always remains.
   */
  function asActiveAdmin<T>(actorId: string, change: (tx: Prisma.TransactionClient, actor: StaffMember) => Promise<T>): Promise<T> {
    return db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('companion staff changes'))`;
      const actor = await tx.staffMember.findFirst({ where: { id: actorId, removedAt: null } });
      if (actor?.role !== 'admin') {
        throw new AppError(403, 'You are no longer an admin (another admin changed your role or removed you): nothing was changed.');
      }
      return change(tx, actor);
    });
  }

  async function changeable(tx: Prisma.TransactionClient, actorId: string, id: string, what: string): Promise<StaffMember> {
    const member = z.uuid().safeParse(id).success ? await tx.staffMember.findUnique({ where: { id } }) : null;
    if (!member || member.removedAt) throw AppError.notFound();
    if (member.id === actorId) throw notYourself(what);
    if (isConfiguredAdmin(member.email)) throw alwaysAnAdmin(member.email);
    return member;
  }

  return {
    isConfiguredAdmin,

    /** The staff member behind a session, unless an admin removed them meanwhile. */
    findActive: (id: string) => db.staffMember.findFirst({ where: { id, removedAt: null } }),

    /** Decides whether this Google identity may come in, and records the sign-in (new people are viewers). */
    async signIn(identity: GoogleIdentity): Promise<SignInOutcome> {
      const decision = decideAccess(identity, rules);
      if (!decision.allowed) return { kind: 'refused', reason: decision.reason };
      const { email, configuredAdmin } = decision;
      const existing = await db.staffMember.findUnique({ where: { email } });
      if (existing?.removedAt && !configuredAdmin) {
        return {
          kind: 'refused',
          reason: `An administrator removed ${email} from the staff on ${existing.removedAt.toISOString().slice(0, 10)}. Ask an administrator to give you a role again.`,
        };
      }
      // ADMIN_EMAILS names addresses, whoever holds them; everyone else's role belongs to the account
      // that took it up.
      const subject = identity.subject ?? null;
      if (existing?.googleSubject && subject && existing.googleSubject !== subject && !configuredAdmin) {
        return {
          kind: 'refused',
          reason: `${email} was given its role when it belonged to another Google account. Ask an administrator to give it a role again.`,
        };
      }
      const now = new Date();
      const name = identity.name ?? null;
      const member = await db.staffMember.upsert({
        where: { email },
        create: { email, name, role: configuredAdmin ? 'admin' : 'viewer', lastSignInAt: now, googleSubject: subject },
        update: { name, lastSignInAt: now, googleSubject: subject ?? undefined, ...(configuredAdmin ? { role: 'admin', removedAt: null } : {}) },
      });
      return { kind: 'accepted', member };
    },

    /**
     * Gives someone a role, before or after their first sign-in; brings back a removed member.
     * `actorId` is the admin doing it on the staff page; users:grant has none and may do anything.
     */
    async grant(email: string, role: StaffRole, actorId?: string): Promise<StaffMember> {
      if (isConfiguredAdmin(email) && role !== 'admin') throw alwaysAnAdmin(email);
      const upsert = (client: Prisma.TransactionClient) =>
        // The role goes to whichever Google account signs in next with the address.
        client.staffMember.upsert({ where: { email }, create: { email, role }, update: { role, removedAt: null, googleSubject: null } });
      if (actorId === undefined) return upsert(db);
      return asActiveAdmin(actorId, (tx, actor) => {
        if (email === actor.email) throw notYourself('change the role of');
        return upsert(tx);
      });
    },

    list: () => db.staffMember.findMany({ where: { removedAt: null }, orderBy: [{ role: 'desc' }, { email: 'asc' }] }),

    setRole(actorId: string, id: string, role: StaffRole): Promise<{ member: StaffMember; previous: StaffRole }> {
      return asActiveAdmin(actorId, async (tx) => {
        const member = await changeable(tx, actorId, id, 'change the role of');
        const updated = await tx.staffMember.update({ where: { id }, data: { role } });
        return { member: updated, previous: member.role };
      });
    },

    /** Takes the person's access away; their open sessions end at their next request. */
    remove(actorId: string, id: string): Promise<StaffMember> {
      return asActiveAdmin(actorId, async (tx) => {
        await changeable(tx, actorId, id, 'remove');
        return tx.staffMember.update({ where: { id }, data: { removedAt: new Date() } });
      });
    },

    /** True when the address could sign in by the current rules (users:grant warns otherwise). */
    mayEverSignIn(email: string): boolean {
      return isConfiguredAdmin(email) || rules.domains.includes(domainOf(email));
    },
  };
}

export type StaffService = ReturnType<typeof createStaffService>;
