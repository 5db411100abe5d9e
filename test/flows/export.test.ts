import { z } from 'zod';
import { buildFlowExport, DEFAULT_WEBHOOK_BODY, FLOW_SPEC_VERSION } from '../../src/flows/export';

/** The goflow flow spec's required fields (https://nyaruka.github.io/goflow/), as a schema. */
const uuid = z.uuid();
const exitSchema = z.object({ uuid, destination_uuid: uuid.nullable().optional() });
const actionSchema = z.looseObject({ uuid, type: z.string().min(1) });
const routerSchema = z.object({
  type: z.literal('switch'),
  operand: z.string().startsWith('@'),
  cases: z.array(z.object({ uuid, type: z.string(), arguments: z.array(z.string()), category_uuid: uuid })),
  categories: z.array(z.object({ uuid, name: z.string().min(1), exit_uuid: uuid })).min(1),
  default_category_uuid: uuid,
});
const nodeSchema = z.object({ uuid, actions: z.array(actionSchema), router: routerSchema.optional(), exits: z.array(exitSchema).min(1) });
const exportSchema = z.object({
  version: z.string(),
  site: z.string(),
  flows: z
    .array(
      z.looseObject({
        uuid,
        name: z.string().min(1),
        spec_version: z.string().regex(/^\d+\.\d+\.\d+$/),
        language: z.string().length(3),
        type: z.enum(['messaging', 'messaging_offline', 'voice']),
        nodes: z.array(nodeSchema).min(1),
      }),
    )
    .length(1),
  campaigns: z.array(z.unknown()),
  triggers: z.array(z.unknown()),
  fields: z.array(z.unknown()),
  groups: z.array(z.unknown()),
});

function checkStructure(flowExport: unknown) {
  const parsed = exportSchema.parse(flowExport);
  const [flow] = parsed.flows;
  const nodeIds = new Set(flow!.nodes.map((node) => node.uuid));
  for (const node of flow!.nodes) {
    for (const exit of node.exits) if (exit.destination_uuid) expect(nodeIds.has(exit.destination_uuid)).toBe(true);
    if (!node.router) continue;
    const exitIds = new Set(node.exits.map((exit) => exit.uuid));
    const categoryIds = new Set(node.router.categories.map((category) => category.uuid));
    for (const category of node.router.categories) expect(exitIds.has(category.exit_uuid)).toBe(true);
    for (const routeCase of node.router.cases) expect(categoryIds.has(routeCase.category_uuid)).toBe(true);
    expect(categoryIds.has(node.router.default_category_uuid)).toBe(true);
  }
  return { flow: flow! };
}

describe('RapidPro flow export', () => {
  it('calls the opt-out webhook with the token, the default body and Success/Failure branches', () => {
    const flowExport = buildFlowExport({ webhook: { kind: 'optout' }, baseUrl: 'https://companion.example.org/', token: 'cmp_abc_def' });
    const { flow } = checkStructure(flowExport);
    expect(flow.spec_version).toBe(FLOW_SPEC_VERSION);
    const [webhookNode, success, failure] = flow.nodes;
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
    const { flow } = checkStructure(flowExport);
    const action = flow.nodes[0]!.actions[0] as unknown as { url: string; headers: Record<string, string> };
    expect(action.url).toBe('https://companion.example.org/api/v1/whatsapp/templates?template=optout_confirmation&language=pt&param=@contact.name&param=clinic+A');
    expect(action.headers['Idempotency-Key']).toBeUndefined();
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
