import type { ErrorAnswer } from '../http/errors';
import { html } from './html';
import { messagePage, type PageContext } from './layout';

export function refusedPage(ctx: PageContext, reason: string) {
  return messagePage(ctx, 'You cannot use these pages', [reason, 'If you think you should, ask one of the programme’s administrators.'], {
    href: '/auth/google',
    label: 'Sign in with another Google account',
  });
}

export function signedOutPage(ctx: PageContext) {
  return messagePage(ctx, 'You are signed out', ['To sign in again, use your Google account.'], { href: '/admin', label: 'Sign in' });
}

export function notConfiguredPage(ctx: PageContext, missing: string[]) {
  return messagePage(ctx, 'Sign-in is not configured', [
    html`The staff pages need Google sign-in, and these settings are missing: <strong>${missing.join(', ')}</strong>.`,
    html`Set them in the environment or in <code>.env</code> (see <code>.env.example</code>), then restart the companion.`,
  ]);
}

const ERROR_TITLES: Record<number, string> = {
  400: 'That did not work',
  403: 'Not allowed',
  404: 'Not found',
  409: 'That cannot be done now',
};

export function errorPage(ctx: PageContext, answer: ErrorAnswer) {
  const title = ERROR_TITLES[answer.status] ?? (answer.status >= 500 ? 'Something went wrong' : 'That did not work');
  const message =
    answer.status === 500
      ? 'Something went wrong on our side. Try again; if it keeps happening, tell the engineers when it happened.'
      : answer.status === 404
        ? 'There is nothing here. The link may be wrong, or what it pointed to is gone.'
        : answer.message;
  const details = (answer.details ?? []).map((detail) => html`${detail.path}: ${detail.message}`);
  return messagePage(ctx, title, [message, ...details], ctx.member ? { href: '/admin', label: 'Back to the overview' } : undefined);
}
