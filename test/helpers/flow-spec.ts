import { z } from 'zod';

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

/**
 * Checks a RapidPro export of one flow against the spec's required fields and its references (every
 * exit leads to a node of the flow, every category to an exit of its node, every case to a category),
 * and returns the flow.
 */
export function checkFlowStructure(flowExport: unknown) {
  const parsed = exportSchema.parse(flowExport);
  const flow = parsed.flows[0]!;
  const nodeIds = new Set(flow.nodes.map((node) => node.uuid));
  for (const node of flow.nodes) {
    for (const exit of node.exits) if (exit.destination_uuid) expect(nodeIds.has(exit.destination_uuid)).toBe(true);
    if (!node.router) continue;
    const exitIds = new Set(node.exits.map((exit) => exit.uuid));
    const categoryIds = new Set(node.router.categories.map((category) => category.uuid));
    for (const category of node.router.categories) expect(exitIds.has(category.exit_uuid)).toBe(true);
    for (const routeCase of node.router.cases) expect(categoryIds.has(routeCase.category_uuid)).toBe(true);
    expect(categoryIds.has(node.router.default_category_uuid)).toBe(true);
  }
  return flow;
}

export type CheckedFlow = ReturnType<typeof checkFlowStructure>;

export interface WebhookAction {
  type: 'call_webhook';
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  result_name: string;
}

/** The flow's one Call Webhook node and its action. */
export function webhookNodeOf(flow: CheckedFlow) {
  const nodes = flow.nodes.filter((node) => node.actions.some((action) => action.type === 'call_webhook'));
  expect(nodes).toHaveLength(1);
  const node = nodes[0]!;
  return { node, action: node.actions.find((action) => action.type === 'call_webhook') as unknown as WebhookAction };
}

/** The node that `node`'s router sends the category named `categoryName` to. */
export function nodeAfter(flow: CheckedFlow, node: CheckedFlow['nodes'][number], categoryName: string) {
  const category = node.router!.categories.find((candidate) => candidate.name === categoryName)!;
  const exit = node.exits.find((candidate) => candidate.uuid === category.exit_uuid)!;
  return flow.nodes.find((candidate) => candidate.uuid === exit.destination_uuid)!;
}
