import { Router } from 'express';
import { z } from 'zod';
import type { AuditLog } from '../audit/log';
import { requireRole, signedIn } from '../auth/guard';
import type { StaffMember } from '../auth/staff';
import { parseOrThrow } from '../http/validate';
import { urlWith } from '../pages/html';
import { sendPage } from '../pages/send';
import type { CountryCode } from '../shared/phone';
import type { SendFilter } from '../whatsapp/send-filter';
import type { WhatsappSendLog } from '../whatsapp/store';
import { TEMPLATE_SEND_STATUSES, type TemplateSendStore } from '../whatsapp/template-send-store';
import type { TemplateSendService } from '../whatsapp/template-sends';
import { seesFullNumbers } from './format';
import type { NumberSearchLimit } from './number-search';
import { redirectWithMessage, type PageContextFor } from './page-context';
import { cancelFormSchema, describeRetry, recordRetries, rowOfParam } from './row-actions';
import { dayRange, manyValues, optionalDate, optionalText, pageCountOf, pageNumber, pageOf } from './queries';
import { QUEUED_SENDS_PATH, sendRetryConfirmPage, templateSendDetailPage, templateSendListPage, whatsappPage, type TemplateSendQuery } from './views/whatsapp';

/** What both lists of sends filter by. */
const sendQuerySchema = z.object({ template: optionalText, recipient: optionalText, from: optionalDate, to: optionalDate });
const whatsappQuerySchema = sendQuerySchema.extend({ outcome: z.enum(['sent', 'failed']).optional().catch(undefined) });
const queuedQuerySchema = sendQuerySchema.extend({ status: z.enum(TEMPLATE_SEND_STATUSES).optional().catch(undefined) });
const retryFormSchema = queuedQuerySchema.extend({
  id: manyValues.pipe(z.array(z.uuid()).max(1000)),
  confirmed: z.literal('yes').optional(),
});

function filterOf(query: z.infer<typeof sendQuerySchema>, viewer: StaffMember, defaultCountry: CountryCode): SendFilter {
  const { start, end } = dayRange(query.from, query.to);
  return {
    template: query.template || undefined,
    recipient: query.recipient || undefined,
    wholeNumbersOnly: !seesFullNumbers(viewer),
    defaultCountry,
    createdFrom: start,
    createdBefore: end,
  };
}

/** The queued list's query without empty values, to carry in links and forms. */
function queuedQueryOf(parsed: z.infer<typeof queuedQuerySchema>): TemplateSendQuery {
  return { status: parsed.status, template: parsed.template || undefined, recipient: parsed.recipient || undefined, from: parsed.from, to: parsed.to };
}

/**
 * The WhatsApp pages: the synchronous sends (whatsapp_sends) and the queued ones (template_sends),
 * which operators may retry and cancel.
 */
export function whatsappPages(deps: {
  whatsappSends: WhatsappSendLog;
  templateSends: TemplateSendService;
  templateSendStore: TemplateSendStore;
  audit: AuditLog;
  pageContext: PageContextFor;
  limitNumberSearch: NumberSearchLimit;
  defaultCountry: CountryCode;
}): Router {
  const { templateSends, templateSendStore: store, audit, pageContext, limitNumberSearch, defaultCountry } = deps;
  const router = Router();

  router.get('/', async (req, res) => {
    const query = parseOrThrow(whatsappQuerySchema, req.query);
    const page = pageNumber.parse(req.query.page);
    await limitNumberSearch(req, 'whatsapp', query.recipient);
    const filter = { ...filterOf(query, signedIn(req), defaultCountry), outcome: query.outcome };
    const { total, rows } = await deps.whatsappSends.list(filter, pageOf(page));
    sendPage(res, whatsappPage(pageContext(req, 'whatsapp'), { query, rows, total, page, pageCount: pageCountOf(total) }));
  });

  router.get('/queued', async (req, res) => {
    const parsed = parseOrThrow(queuedQuerySchema, req.query);
    const page = pageNumber.parse(req.query.page);
    await limitNumberSearch(req, 'whatsapp queued', parsed.recipient);
    const filter = { ...filterOf(parsed, signedIn(req), defaultCountry), status: parsed.status };
    const { total, rows } = await store.list(filter, pageOf(page));
    const view = { query: queuedQueryOf(parsed), rows, total, page, pageCount: pageCountOf(total) };
    sendPage(res, templateSendListPage(pageContext(req, 'template-sends'), view));
  });

  router.post('/queued/retry', requireRole('operator'), async (req, res) => {
    const form = parseOrThrow(retryFormSchema, req.body);
    const query = queuedQueryOf(form);
    const ids = await store.retryableAmong(form.id);
    if (ids.length === 0) {
      await redirectWithMessage(req, res, urlWith(QUEUED_SENDS_PATH, { ...query }), 'error', 'Nothing to retry: select failed or cancelled sends first.');
      return;
    }
    if (!form.confirmed) {
      sendPage(res, sendRetryConfirmPage(pageContext(req, 'template-sends'), { ids, query }));
      return;
    }
    const report = await templateSends.retry(ids);
    await recordRetries(audit, req, 'template_send_retry', report.retried, true);
    const message = describeRetry('send', report);
    await redirectWithMessage(req, res, urlWith(QUEUED_SENDS_PATH, { ...query }), message.kind, message.text);
  });

  router.get('/queued/:id', async (req, res) => {
    const send = await rowOfParam(req, store.findById);
    sendPage(res, templateSendDetailPage(pageContext(req, 'template-sends'), { send, history: await audit.about(send.id) }));
  });

  router.post('/queued/:id/retry', requireRole('operator'), async (req, res) => {
    const send = await rowOfParam(req, store.findById);
    const report = await templateSends.retry([send.id]);
    await recordRetries(audit, req, 'template_send_retry', report.retried, false);
    const message = report.notRetryable.length > 0 ? { kind: 'error' as const, text: `Not retried: it is ${(await store.findById(send.id))?.status} now.` } : describeRetry('send', report);
    await redirectWithMessage(req, res, `${QUEUED_SENDS_PATH}/${send.id}`, message.kind, message.text);
  });

  router.post('/queued/:id/cancel', requireRole('operator'), async (req, res) => {
    const send = await rowOfParam(req, store.findById);
    const { reason } = parseOrThrow(cancelFormSchema, req.body);
    await templateSends.cancel(send.id, reason);
    await audit.record({ actor: signedIn(req).email, action: 'template_send_cancel', target: send.id, details: { reason } });
    await redirectWithMessage(req, res, `${QUEUED_SENDS_PATH}/${send.id}`, 'ok', 'Cancelled: it will not be sent.');
  });

  return router;
}
