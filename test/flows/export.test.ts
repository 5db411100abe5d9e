import { buildFlowExport, DEFAULT_WEBHOOK_BODY, FLOW_SPEC_VERSION, OPTOUT_WEBHOOK_BODY } from '../../src/flows/export';
import { checkFlowStructure, nodeAfter, webhookNodeOf } from '../helpers/flow-spec';
import { goflowJson, goflowUrlEncode, renderTemplate, type RunContext } from '../helpers/goflow';

/** The two template webhooks and where each is served: they share the query, body and encoding. */
const TEMPLATE_WEBHOOKS = [
  ['whatsapp-template', '/api/v1/whatsapp/templates'],
  ['whatsapp-template-send', '/api/v1/whatsapp/template-sends'],
] as const;

const CONTEXT: RunContext = {
  contact: { uuid: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f', name: 'Nomsa "Zoë" Dlamini & Co #1', urn: 'whatsapp:27820001001', fields: { note: '12/01 + 50%?', visit: '2027-01-12T09:30:00.000000+02:00' } },
  run: { uuid: '0196d7d9-6d0c-7fd3-b7a5-a5b1c1d2e3f4', created_on: '2026-11-26T10:15:00.123456Z', flow: { uuid: 'bead76f5-dac4-4c9d-996c-c62b326e8c0a', name: 'F' } },
  node: { uuid: 'a8f3e1c2-5b6d-4e7f-8091-a2b3c4d5e6f7', visit_count: 2 },
  results: { reminder: { value: 'yes "please"', category: 'Yes' } },
};

describe('RapidPro flow export', () => {
  it("calls the opt-out webhook with the token, the default body with the contact's fields, and Success/Failure branches", () => {
    const flowExport = buildFlowExport({ webhook: { kind: 'optout' }, baseUrl: 'https://companion.example.org/', token: 'cmp_abc_def' });
    const flow = checkFlowStructure(flowExport);
    expect(flow.spec_version).toBe(FLOW_SPEC_VERSION);
    const [webhookNode, success, failure] = flow.nodes;
    expect(webhookNodeOf(flow).node).toBe(webhookNode);
    expect(webhookNode!.actions[0]).toEqual({
      uuid: expect.any(String),
      type: 'call_webhook',
      method: 'POST',
      url: 'https://companion.example.org/api/v1/optouts',
      headers: { Authorization: 'Token cmp_abc_def', 'Content-Type': 'application/json', 'Idempotency-Key': '@run.uuid' },
      body: OPTOUT_WEBHOOK_BODY,
      result_name: 'Companion',
    });
    expect(webhookNode!.router).toMatchObject({ operand: '@results.companion.category', cases: [{ type: 'has_only_text', arguments: ['Success'] }] });
    const categories = webhookNode!.router!.categories;
    expect(categories.map((category) => category.name)).toEqual(['Success', 'Failure']);
    expect(webhookNode!.router!.default_category_uuid).toBe(categories[1]!.uuid);
    expect(nodeAfter(flow, webhookNode!, 'Success')).toBe(success);
    expect(nodeAfter(flow, webhookNode!, 'Failure')).toBe(failure);
  });

  it('calls the WhatsApp template webhook with the template in the query, each expression URL-encoded by RapidPro', () => {
    const flowExport = buildFlowExport({
      webhook: { kind: 'whatsapp-template', template: 'optout_confirmation', language: 'pt', params: ['@contact.name', 'clinic A'] },
      baseUrl: 'https://companion.example.org',
      token: 't',
    });
    const { action } = webhookNodeOf(checkFlowStructure(flowExport));
    expect(action.url).toBe('https://companion.example.org/api/v1/whatsapp/templates?template=optout_confirmation&language=pt&param=@(url_encode(contact.name))&param=clinic%20A');
    expect(action.headers['Idempotency-Key']).toBeUndefined();
    expect(action.body).toBe(DEFAULT_WEBHOOK_BODY);
  });

  it('calls the queued template webhook with the same query and body, keyed by the run and the pass through the node so that a retried call queues one send', () => {
    const flowExport = buildFlowExport({
      webhook: { kind: 'whatsapp-template-send', template: 'appointment_reminder', language: 'pt', params: ['@contact.name', 'clinic A'] },
      baseUrl: 'https://companion.example.org',
      token: 't',
    });
    const flow = checkFlowStructure(flowExport);
    const { action, node } = webhookNodeOf(flow);
    expect(action.url).toBe('https://companion.example.org/api/v1/whatsapp/template-sends?template=appointment_reminder&language=pt&param=@(url_encode(contact.name))&param=clinic%20A');
    expect(action.headers).toMatchObject({ Authorization: 'Token t', 'Content-Type': 'application/json' });
    expect(renderTemplate(action.headers['Idempotency-Key']!, CONTEXT)).toBe(`${CONTEXT.run.uuid}-${CONTEXT.node.uuid}-2`);
    expect(action.body).toBe(DEFAULT_WEBHOOK_BODY);
    // The route answers 202 once the send is stored: the Success branch says queued, not sent.
    expect(flow.name).toBe('Companion: queued WhatsApp template appointment_reminder');
    expect(nodeAfter(flow, node, 'Success').actions[0]).toMatchObject({ type: 'send_msg', text: 'Message queued: it will be sent shortly.' });
  });

  describe.each(TEMPLATE_WEBHOOKS)('the %s webhook', (kind, path) => {
    it.each([
      ['a field', '@fields.note', '@(url_encode(fields.note))'],
      ['a function call with spaces and quotes', '@(format_date(fields.visit, "DD/MM"))', '@(url_encode(format_date(fields.visit, "DD/MM")))'],
      ['a ")" inside quotes in an expression', '@(if(fields.x = ")", "a", "b"))', '@(url_encode(if(fields.x = ")", "a", "b")))'],
      ['text around a field', 'Dr @fields.doctor_name.', 'Dr%20@(url_encode(fields.doctor_name)).'],
      ['characters that mean something in a URL', '50% & more=#1', '50%25%20%26%20more%3D%231'],
      ['a literal @ (@@) and a lone @', 'me@@x.org @ 10', 'me%40x.org%20%40%2010'],
      ['an @ before a name that is no variable (an email address)', 'me@x.org', 'me%40x.org'],
      ['an unbalanced @(', '@(oops', '%40(oops'],
      ['text that is not ASCII', 'Ngiyabonga ✓', 'Ngiyabonga%20%E2%9C%93'],
    ])('writes %s in a query value as RapidPro must read it: expressions in url_encode(), text encoded once', (_case, param, encoded) => {
      const flowExport = buildFlowExport({ webhook: { kind, template: 'x', params: [param] }, baseUrl: 'https://c', token: 't' });
      expect(webhookNodeOf(checkFlowStructure(flowExport)).action.url).toBe(`https://c${path}?template=x&param=${encoded}`);
    });

    it('gives a URL whose query, rendered by RapidPro with no escaping, decodes to exactly what each parameter computes', () => {
      const params = ['@contact.name', '@fields.note', '@(format_date(fields.visit, "DD/MM"))', 'Dr @fields.note; me@@x.org @ #2', '@(oops'];
      const flowExport = buildFlowExport({ webhook: { kind, template: 'x', params }, baseUrl: 'https://c', token: 't' });
      const url = new URL(renderTemplate(webhookNodeOf(checkFlowStructure(flowExport)).action.url, CONTEXT));
      expect(url.pathname).toBe(path);
      expect(url.hash).toBe('');
      expect(url.searchParams.getAll('param')).toEqual(['Nomsa "Zoë" Dlamini & Co #1', '12/01 + 50%?', '12/01', 'Dr 12/01 + 50%?; me@x.org @ #2', '@(oops']);
    });

    it("writes RapidPro's default body, which json() renders as JSON whatever the contact's name and results hold", () => {
      const flowExport = buildFlowExport({ webhook: { kind, template: 'x', params: [] }, baseUrl: 'https://c', token: 't' });
      const { action } = webhookNodeOf(checkFlowStructure(flowExport));
      expect(JSON.parse(renderTemplate(action.body, CONTEXT))).toEqual({
        contact: { uuid: CONTEXT.contact.uuid, name: CONTEXT.contact.name, urn: CONTEXT.contact.urn },
        flow: CONTEXT.run.flow,
        results: CONTEXT.results,
        run: { uuid: CONTEXT.run.uuid, created_on: CONTEXT.run.created_on },
      });
    });
  });

  it("writes the opt-out body as RapidPro's json() renders it, the contact's fields included", () => {
    const context: RunContext = {
      contact: { uuid: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f', name: 'Nomsa "Zoë" Dlamini & Co #1', urn: 'tel:+27820001001', fields: { facility_code: '12/01 + 50%?', opt_out_date: null } },
      run: { uuid: '0196d7d9-6d0c-7fd3-b7a5-a5b1c1d2e3f4', created_on: '2026-11-26T10:15:00.123456Z', flow: { uuid: 'bead76f5-dac4-4c9d-996c-c62b326e8c0a', name: 'F' } },
      node: { uuid: 'a8f3e1c2-5b6d-4e7f-8091-a2b3c4d5e6f7', visit_count: 1 },
      results: { optout_reason: { value: 'job', category: 'Job Change' } },
    };
    const flowExport = buildFlowExport({ webhook: { kind: 'optout' }, baseUrl: 'https://c', token: 't' });
    const { action } = webhookNodeOf(checkFlowStructure(flowExport));
    expect(JSON.parse(renderTemplate(action.body, context))).toEqual({
      contact: { uuid: context.contact.uuid, name: context.contact.name, urn: 'tel:+27820001001', fields: context.contact.fields },
      flow: context.run.flow,
      results: { optout_reason: { value: 'job', category: 'Job Change' } },
      run: { uuid: context.run.uuid, created_on: context.run.created_on },
    });
    expect(renderTemplate(action.headers['Idempotency-Key']!, context)).toBe(context.run.uuid);
  });

  // The stand-in's own check against goflow's documented examples (excellent/functions/builtin.go, excellent/types/object.go).
  it('has a goflow stand-in that renders as goflow documents', () => {
    expect(goflowUrlEncode('two & words')).toBe('two%20%26%20words');
    expect(goflowUrlEncode('a+b ë~')).toBe('a%2Bb%20%C3%AB~');
    expect(goflowJson({ foo: 1, bar: 'x' })).toBe('{"bar":"x","foo":1}');
    expect(goflowJson('<a & b>')).toBe('"<a & b>"');
    expect(goflowJson('line\u2028end')).toBe('"line\\u2028end"');
  });

  it("keeps the flow's name within RapidPro's 64 characters", () => {
    const flowExport = buildFlowExport({ webhook: { kind: 'whatsapp-template', template: 'a'.repeat(100), params: [] }, baseUrl: 'https://c', token: 't' });
    expect(checkFlowStructure(flowExport).name).toBe(`Companion: WhatsApp template ${'a'.repeat(35)}`);
    const queued = buildFlowExport({ webhook: { kind: 'whatsapp-template-send', template: 'a'.repeat(100), params: [] }, baseUrl: 'https://c', token: 't' });
    expect(checkFlowStructure(queued).name).toBe(`Companion: queued WhatsApp template ${'a'.repeat(28)}`);
  });

  it('gives every element a UUID of its own, fresh for every export', () => {
    const declared = (value: unknown): string[] =>
      Array.isArray(value)
        ? value.flatMap(declared)
        : value && typeof value === 'object'
          ? Object.entries(value).flatMap(([key, inner]) => (key === 'uuid' ? [inner as string] : declared(inner)))
          : [];
    const first = buildFlowExport({ webhook: { kind: 'optout' }, baseUrl: 'https://x', token: 't' });
    const second = buildFlowExport({ webhook: { kind: 'optout' }, baseUrl: 'https://x', token: 't' });
    const ids = declared(first.flows);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.filter((id) => declared(second.flows).includes(id))).toEqual([]);
  });
});
