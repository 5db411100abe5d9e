import { Router } from 'express';
import { z } from 'zod';
import type { ApiClientService } from '../api-clients/service';
import type { AuditLog } from '../audit/log';
import { signedIn } from '../auth/guard';
import { staffEmailSchema, staffRoleSchema, type StaffService } from '../auth/staff';
import { parseOrThrow } from '../http/validate';
import { sendPage } from '../pages/send';
import { redirectWithMessage, type PageContextFor } from './page-context';
import { apiClientsPage, staffPage } from './views/people';

export const clientNameSchema = z.string().trim().regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, dot, dash and underscore only');
const createClientSchema = z.object({ name: clientNameSchema, role: z.string().trim().min(1).max(50) });
const revokeClientSchema = z.object({ name: clientNameSchema });
const grantSchema = z.object({ email: staffEmailSchema, role: staffRoleSchema });
const roleSchema = z.object({ role: staffRoleSchema });

/** API clients: create (the token shown once), list with last use, revoke. Admins only. */
export function apiClientPages(deps: { apiClients: ApiClientService; audit: AuditLog; pageContext: PageContextFor }): Router {
  const { apiClients, audit, pageContext } = deps;
  const router = Router();

  router.get('/', async (req, res) => {
    sendPage(res, apiClientsPage(pageContext(req, 'api-clients'), { clients: await apiClients.list() }));
  });

  router.post('/', async (req, res) => {
    const { name, role } = parseOrThrow(createClientSchema, req.body);
    const created = await apiClients.create(name, role);
    await audit.record({ actor: signedIn(req).email, action: 'api_client_create', target: name, details: { role } });
    // Answered directly, not redirected: the token exists only in this answer (never cached: sendPage).
    const view = { clients: await apiClients.list(), created: { name: created.name, token: created.token } };
    sendPage(res, apiClientsPage(pageContext(req, 'api-clients'), view), 201);
  });

  router.post('/revoke', async (req, res) => {
    const { name } = parseOrThrow(revokeClientSchema, req.body);
    if (await apiClients.revoke(name)) {
      await audit.record({ actor: signedIn(req).email, action: 'api_client_revoke', target: name });
      await redirectWithMessage(req, res, '/admin/api-clients', 'ok', `Revoked “${name}”: its token no longer works.`);
    } else {
      await redirectWithMessage(req, res, '/admin/api-clients', 'error', `There is no active API client named “${name}”.`);
    }
  });

  return router;
}

/** Staff: list, give a role (before or after a first sign-in), change a role, remove. Admins only. */
export function staffPages(deps: { staff: StaffService; audit: AuditLog; pageContext: PageContextFor }): Router {
  const { staff, audit, pageContext } = deps;
  const router = Router();

  router.get('/', async (req, res) => {
    sendPage(res, staffPage(pageContext(req, 'staff'), { members: await staff.list(), isConfiguredAdmin: staff.isConfiguredAdmin }));
  });

  router.post('/grant', async (req, res) => {
    const { email, role } = parseOrThrow(grantSchema, req.body);
    await staff.grant(email, role, signedIn(req).id);
    await audit.record({ actor: signedIn(req).email, action: 'staff_grant', target: email, details: { role } });
    const warning = staff.mayEverSignIn(email) ? '' : ' Note: they can sign in only with an account of an allowed Google Workspace domain.';
    await redirectWithMessage(req, res, '/admin/staff', 'ok', `${email} is now ${role === 'admin' ? 'an' : 'a'} ${role}.${warning}`);
  });

  router.post('/:id/role', async (req, res) => {
    const { role } = parseOrThrow(roleSchema, req.body);
    const { member, previous } = await staff.setRole(signedIn(req).id, String(req.params.id), role);
    await audit.record({ actor: signedIn(req).email, action: 'staff_role_change', target: member.email, details: { from: previous, to: role } });
    await redirectWithMessage(req, res, '/admin/staff', 'ok', `${member.email} is now ${role === 'admin' ? 'an' : 'a'} ${role}.`);
  });

  router.post('/:id/remove', async (req, res) => {
    const member = await staff.remove(signedIn(req).id, String(req.params.id));
    await audit.record({ actor: signedIn(req).email, action: 'staff_remove', target: member.email });
    await redirectWithMessage(req, res, '/admin/staff', 'ok', `${member.email} can no longer sign in.`);
  });

  return router;
}
