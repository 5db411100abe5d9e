import { Router } from 'express';
import { z } from 'zod';
import type { AuditLog } from '../audit/log';
import { requireRole, signedIn } from '../auth/guard';
import type { StaffMember } from '../auth/staff';
import type { CountryCode } from '../shared/phone';
import { parseOrThrow } from '../http/validate';
import type { OptoutService, RetryReport } from '../optouts/service';
import { OPTOUT_STATUSES, RETRYABLE_STATUSES, type OptoutFilter, type OptoutStatus, type OptoutStore } from '../optouts/store';
import { urlWith } from '../pages/html';
import { sendPage } from '../pages/send';
import { plural, seesFullNumbers } from './format';
import type { NumberSearchLimit } from './number-search';
import { redirectWithMessage, type PageContextFor } from './page-context';
import { cancelFormSchema, describeRetry, recordRetries, rowOfParam } from './row-actions';
import { dayRange, manyValues, optionalDate, optionalText, pageCountOf, pageNumber, pageOf } from './queries';
import { optoutDetailPage, optoutListPage, retryConfirmPage, type OptoutQuery } from './views/optouts';

const listQuerySchema = z.object({
  status: z.enum(OPTOUT_STATUSES).optional().catch(undefined),
  from: optionalDate,
  to: optionalDate,
  q: optionalText,
});

const retryFormSchema = listQuerySchema.extend({
  scope: z.enum(['selected', 'failed']),
  id: manyValues.pipe(z.array(z.uuid()).max(1000)),
  confirmed: z.literal('yes').optional(),
});

/** "Retry all failed" takes at most this many (the oldest first) in one go: a few seconds' work. */
export const RETRY_ALL_LIMIT = 5000;

function filterOf(query: OptoutQuery & { status?: OptoutStatus }, viewer: StaffMember, defaultCountry: CountryCode): OptoutFilter {
  const { start, end } = dayRange(query.from, query.to);
  return { status: query.status, receivedFrom: start, receivedBefore: end, search: query.q || undefined, wholeNumbersOnly: !seesFullNumbers(viewer), defaultCountry };
}

/** The list's query without empty values, to carry in links and forms. */
function queryOf(parsed: z.infer<typeof listQuerySchema>): OptoutQuery {
  return { status: parsed.status, from: parsed.from, to: parsed.to, q: parsed.q || undefined };
}

function describeOptoutRetry(report: RetryReport): { kind: 'ok' | 'error'; text: string } {
  const { length } = report.contactHasQueued;
  const stayed =
    length > 0
      ? [
          `${plural(length, 'opt-out')} stayed as ${length === 1 ? 'it was' : 'they were'}: ` +
            'the contact already has an opt-out in the queue, which will be sent. Cancel that one first to send this one instead.',
        ]
      : [];
  return describeRetry('opt-out', report, stayed);
}

export function optoutPages(deps: {
  optouts: OptoutService;
  store: OptoutStore;
  audit: AuditLog;
  pageContext: PageContextFor;
  limitNumberSearch: NumberSearchLimit;
  defaultCountry: CountryCode;
}): Router {
  const { optouts, store, audit, pageContext, limitNumberSearch, defaultCountry } = deps;
  const router = Router();

  router.get('/', async (req, res) => {
    const parsed = parseOrThrow(listQuerySchema, req.query);
    const page = pageNumber.parse(req.query.page);
    await limitNumberSearch(req, 'optouts', parsed.q);
    const query = queryOf(parsed);
    const filter = filterOf(parsed, signedIn(req), defaultCountry);
    const [{ total, rows }, failedMatching] = await Promise.all([
      store.search(filter, pageOf(page)),
      !parsed.status || parsed.status === 'failed' ? store.count({ ...filter, status: 'failed' }) : 0,
    ]);
    sendPage(res, optoutListPage(pageContext(req, 'optouts'), { query, rows, total, page, pageCount: pageCountOf(total), failedMatching }));
  });

  router.post('/retry', requireRole('operator'), async (req, res) => {
    const form = parseOrThrow(retryFormSchema, req.body);
    const query = queryOf(form);
    const back = urlWith('/admin/optouts', { ...query });
    const failedFilter: OptoutFilter = { ...filterOf({ ...form, status: undefined }, signedIn(req), defaultCountry), status: 'failed' };
    // "Retry all failed that match" says how many match: a search as much as the list's.
    if (form.scope === 'failed') await limitNumberSearch(req, 'optouts retry', form.q);
    const ids =
      form.scope === 'selected'
        ? await store.idsWithStatus(RETRYABLE_STATUSES, { ids: form.id })
        : await store.idsWithStatus(['failed'], { filter: failedFilter, limit: RETRY_ALL_LIMIT });
    if (ids.length === 0) {
      const text = form.scope === 'selected' ? 'Nothing to retry: select failed or cancelled opt-outs first.' : 'Nothing to retry: no failed opt-outs match.';
      await redirectWithMessage(req, res, back, 'error', text);
      return;
    }
    if (!form.confirmed) {
      const left = form.scope === 'failed' && ids.length === RETRY_ALL_LIMIT ? (await store.count(failedFilter)) - ids.length : 0;
      const view = { scope: form.scope, ids: form.scope === 'selected' ? ids : [], query, count: ids.length, left };
      sendPage(res, retryConfirmPage(pageContext(req, 'optouts'), view));
      return;
    }
    const report = await optouts.retry(ids);
    await recordRetries(audit, req, 'optout_retry', report.retried, true);
    const message = describeOptoutRetry(report);
    await redirectWithMessage(req, res, back, message.kind, message.text);
  });

  router.get('/:id', async (req, res) => {
    const optout = await rowOfParam(req, store.findById);
    const [attempts, history] = await Promise.all([store.attemptsOf(optout.id), audit.about(optout.id)]);
    sendPage(res, optoutDetailPage(pageContext(req, 'optouts'), { optout, attempts, history }));
  });

  router.post('/:id/retry', requireRole('operator'), async (req, res) => {
    const optout = await rowOfParam(req, store.findById);
    const report = await optouts.retry([optout.id]);
    await recordRetries(audit, req, 'optout_retry', report.retried, false);
    const message = report.notRetryable.length > 0 ? { kind: 'error' as const, text: `Not retried: it is ${(await store.findById(optout.id))?.status} now.` } : describeOptoutRetry(report);
    await redirectWithMessage(req, res, `/admin/optouts/${optout.id}`, message.kind, message.text);
  });

  router.post('/:id/cancel', requireRole('operator'), async (req, res) => {
    const optout = await rowOfParam(req, store.findById);
    const { reason } = parseOrThrow(cancelFormSchema, req.body);
    await optouts.cancel(optout.id, reason);
    await audit.record({ actor: signedIn(req).email, action: 'optout_cancel', target: optout.id, details: { reason } });
    await redirectWithMessage(req, res, `/admin/optouts/${optout.id}`, 'ok', 'Cancelled: it will not be sent.');
  });

  return router;
}
