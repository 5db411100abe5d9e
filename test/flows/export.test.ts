import { buildFlowExport, DEFAULT_WEBHOOK_BODY, FLOW_SPEC_VERSION } from '../../src/flows/export';
import { checkFlowStructure, webhookNodeOf } from '../helpers/flow-spec';

describe('RapidPro flow export', () => {
  it('calls the opt-out webhook with the token, the default body and Success/Failure branches', () => {
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
      body: DEFAULT_WEBHOOK_BODY,
      result_name: 'Companion',
    });
    expect(webhookNode!.router).toMatchObject({ operand: '@results.companion.category', cases: [{ type: 'has_only_text', arguments: ['Success'] }] });
    const categories = webhookNode!.router!.categories;
    expect(categories.map((category) => category.name)).toEqual(['Success', 'Failure']);
    expect(webhookNode!.router!.default_category_uuid).toBe(categories[1]!.uuid);
    const exitFor = (name: string) => webhookNode!.exits.find((exit) => exit.uuid === categories.find((category) => category.name === name)!.exit_uuid)!;
    expect(exitFor('Success').destination_uuid).toBe(success!.uuid);
    expect(exitFor('Failure').destination_uuid).toBe(failure!.uuid);
  });

  it('calls the WhatsApp template webhook with the template in the query, keeping @expressions intact', () => {
    const flowExport = buildFlowExport({
      webhook: { kind: 'whatsapp-template', template: 'optout_confirmation', language: 'pt', params: ['@contact.name', 'clinic A'] },
      baseUrl: 'https://companion.example.org',
      token: 't',
    });
    const { action } = webhookNodeOf(checkFlowStructure(flowExport));
    expect(action.url).toBe('https://companion.example.org/api/v1/whatsapp/templates?template=optout_confirmation&language=pt&param=@contact.name&param=clinic%20A');
    expect(action.headers['Idempotency-Key']).toBeUndefined();
  });

  it.each([
    ['a function call with spaces and quotes', '@(format_date(fields.visit, "DD/MM"))', '@(format_date(fields.visit, "DD/MM"))'],
    ['text around a field', 'Dr @fields.doctor_name.', 'Dr%20@fields.doctor_name.'],
    ['characters that mean something in a URL', '50% & more=#1', '50%25%20%26%20more%3D%231'],
    ['a literal @ (@@) and a lone @', 'me@@x.org @ 10', 'me@@x.org%20%40%2010'],
    ['an unbalanced @(', '@(oops', '%40(oops'],
    ['text that is not ASCII', 'Ngiyabonga ✓', 'Ngiyabonga%20%E2%9C%93'],
  ])('encodes %s in a query value as text, leaving expressions for RapidPro', (_case, param, encoded) => {
    const flowExport = buildFlowExport({ webhook: { kind: 'whatsapp-template', template: 'x', params: [param] }, baseUrl: 'https://c', token: 't' });
    expect(webhookNodeOf(checkFlowStructure(flowExport)).action.url).toBe(`https://c/api/v1/whatsapp/templates?template=x&param=${encoded}`);
  });

  it("keeps the flow's name within RapidPro's 64 characters", () => {
    const flowExport = buildFlowExport({ webhook: { kind: 'whatsapp-template', template: 'a'.repeat(100), params: [] }, baseUrl: 'https://c', token: 't' });
    expect(checkFlowStructure(flowExport).name).toBe(`Companion: WhatsApp template ${'a'.repeat(35)}`);
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
