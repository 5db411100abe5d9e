import { STAFF_ROLES, type StaffMember, type StaffRole } from '../../auth/staff';
import { time } from '../format';
import { html, type Html } from '../../pages/html';
import { csrfField, layout, selectOptions, type PageContext } from '../../pages/layout';

export interface ApiClientRow {
  id: string;
  name: string;
  role: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export function apiClientsPage(ctx: PageContext, view: { clients: ApiClientRow[]; created?: { name: string; token: string } }) {
  const created =
    view.created &&
    html`<section class="token-box" aria-labelledby="token-title">
<h2 id="token-title">The token of “${view.created.name}”</h2>
<p>Copy it now into RapidPro (header <code>Authorization</code>, value <code>Token …</code>): it is not shown again.</p>
<p><code class="token">${view.created.token}</code></p></section>`;
  const rows = view.clients.map(
    (client) => html`<tr>
  <td data-label="Name">${client.name}</td>
  <td data-label="Role">${client.role}</td>
  <td data-label="Created">${time(client.createdAt)}</td>
  <td data-label="Last used">${client.lastUsedAt ? time(client.lastUsedAt) : 'never'}</td>
  <td data-label="State">${client.revokedAt ? html`revoked ${time(client.revokedAt)}` : 'active'}</td>
  <td>${!client.revokedAt && html`<form method="post" action="/admin/api-clients/revoke">${csrfField(ctx)}
<input type="hidden" name="name" value="${client.name}"><button type="submit" class="danger">Revoke</button></form>`}</td>
</tr>`,
  );
  return layout(
    ctx,
    'API clients',
    html`${created}
<p>Each RapidPro workspace (or other system) that calls the companion's API has a client of its own, so that one can be revoked without the others.</p>
<form class="inline-form" method="post" action="/admin/api-clients">${csrfField(ctx)}
  <label>Name <input name="name" required maxlength="100" pattern="[A-Za-z0-9._\\-]+" placeholder="rapidpro-nurseconnect"></label>
  <label>Role <input name="role" value="rapidpro" required maxlength="50"></label>
  <button type="submit">Create API client</button>
</form>
${
  view.clients.length === 0
    ? html`<p class="empty">No API clients yet.</p>`
    : html`<table class="list"><thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${rows}</tbody></table>`
}`,
  );
}

function roleSelect(selected: StaffRole, id?: string): Html {
  const roles = STAFF_ROLES.map((role): [string, string] => [role, role]);
  return html`<select name="role"${id && html` id="${id}"`}>${selectOptions(roles, selected)}</select>`;
}

export function staffPage(ctx: PageContext, view: { members: StaffMember[]; isConfiguredAdmin: (email: string) => boolean }) {
  const self = ctx.member!;
  const rows = view.members.map((member) => {
    const fixed = member.id === self.id ? 'you' : view.isConfiguredAdmin(member.email) ? 'ADMIN_EMAILS' : undefined;
    return html`<tr>
  <td data-label="Email">${member.email}</td>
  <td data-label="Name">${member.name ?? ''}</td>
  <td data-label="Role">${
    fixed
      ? html`${member.role} <span class="muted">(${fixed})</span>`
      : html`<form class="inline-form" method="post" action="/admin/staff/${member.id}/role">${csrfField(ctx)}
<label class="visually-hidden" for="role-${member.id}">Role of ${member.email}</label>${roleSelect(member.role, `role-${member.id}`)}
<button type="submit">Change</button></form>`
  }</td>
  <td data-label="Last sign-in">${member.lastSignInAt ? time(member.lastSignInAt) : 'never'}</td>
  <td>${!fixed && html`<form method="post" action="/admin/staff/${member.id}/remove">${csrfField(ctx)}<button type="submit" class="danger">Remove</button></form>`}</td>
</tr>`;
  });
  return layout(
    ctx,
    'Staff',
    html`<p>Anyone with a verified account of the programme's Google Workspace can sign in, as a <strong>viewer</strong> (reads everything).
An <strong>operator</strong> can also retry and cancel opt-outs; an <strong>admin</strong> can also manage API clients and staff.</p>
<form class="inline-form" method="post" action="/admin/staff/grant">${csrfField(ctx)}
  <label>Email <input type="email" name="email" required></label>
  <label>Role ${roleSelect('operator')}</label>
  <button type="submit">Give this role</button>
</form>
<table class="list"><thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Last sign-in</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${rows}</tbody></table>`,
  );
}
