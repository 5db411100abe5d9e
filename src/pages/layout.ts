import type { StaffMember } from '../generated/prisma/client';
import { html, type Html } from './html';

/** A link in the header: a section of the staff pages, `current` on the page's own. */
export interface NavLink {
  label: string;
  path: string;
  current: boolean;
}

/** What every page needs to know of the request. */
export interface PageContext {
  /** Undefined on the pages seen before signing in. */
  member?: StaffMember;
  /** The sections the member may open. */
  nav?: NavLink[];
  csrfToken?: string;
  flash?: { kind: 'ok' | 'error'; text: string };
}

/** The hidden field that every state-changing form carries. */
export function csrfField(ctx: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrfToken}">`;
}

function header(ctx: PageContext): Html {
  const { member } = ctx;
  if (!member) return html`<header class="top"><a class="brand" href="/admin">Companion staff pages</a></header>`;
  const links = (ctx.nav ?? []).map(
    (link) => html`<li><a href="${link.path}"${link.current ? html` aria-current="page"` : ''}>${link.label}</a></li>`,
  );
  return html`<header class="top">
  <a class="brand" href="/admin">Companion staff pages</a>
  <nav aria-label="Sections"><ul>${links}</ul></nav>
  <form class="who" method="post" action="/auth/logout">
    <span>${member.email} <span class="role">${member.role}</span></span>
    ${csrfField(ctx)}<button type="submit" class="link">Sign out</button>
  </form>
</header>`;
}

export function layout(ctx: PageContext, title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Companion</title>
<link rel="stylesheet" href="/admin/static/admin.css">
<link rel="icon" href="/admin/static/favicon.svg" type="image/svg+xml">
</head>
<body>
${header(ctx)}
<main>
<h1>${title}</h1>
${ctx.flash && html`<p class="flash flash-${ctx.flash.kind}" role="${ctx.flash.kind === 'error' ? 'alert' : 'status'}">${ctx.flash.text}</p>`}
${body}
</main>
</body>
</html>
`;
}

/** A page that only says something: a refusal, an error, "signed out". */
export function messagePage(ctx: PageContext, title: string, paragraphs: Array<string | Html>, action?: { href: string; label: string }): Html {
  return layout(
    ctx,
    title,
    html`<section class="message">${paragraphs.map((text) => html`<p>${text}</p>`)}${
      action && html`<p><a class="button" href="${action.href}">${action.label}</a></p>`
    }</section>`,
  );
}

/** The options of a <select>, `selected` marked. */
export function selectOptions(options: Array<[value: string, label: string]>, selected: string | undefined): Html[] {
  return options.map(([value, label]) => html`<option value="${value}"${(selected ?? '') === value ? html` selected` : ''}>${label}</option>`);
}

/** Links to the previous and next page of a list. */
export function pager(page: number, pageCount: number, hrefFor: (page: number) => string): Html {
  if (pageCount <= 1) return html``;
  return html`<nav class="pager" aria-label="Pages">
  ${page > 1 ? html`<a href="${hrefFor(page - 1)}" rel="prev">← Newer</a>` : html`<span></span>`}
  <span>Page ${page} of ${pageCount}</span>
  ${page < pageCount ? html`<a href="${hrefFor(page + 1)}" rel="next">Older →</a>` : html`<span></span>`}
</nav>`;
}
