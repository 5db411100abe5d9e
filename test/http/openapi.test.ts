import type { z } from 'zod';
import { apiFeatures } from '../../src/app';
import type { ApiOperation } from '../../src/http/openapi';
import { startTestApp, type TestApp } from '../helpers/app';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ createToken: false });
});
afterAll(() => app.stop());

interface RouteLayer {
  route?: { path: string; methods: Record<string, boolean> };
}

/** `METHOD /api/...` for every route the feature routers really serve, in OpenAPI's path style. */
function servedRoutes(): string[] {
  return apiFeatures(app.deps).flatMap(({ prefix, router }) =>
    (router.stack as RouteLayer[])
      .filter((layer) => layer.route)
      .flatMap((layer) =>
        Object.keys(layer.route!.methods).map((method) => {
          const path = `/api${prefix}${layer.route!.path === '/' ? '' : layer.route!.path}`.replace(/:(\w+)/g, '{$1}');
          return `${method.toUpperCase()} ${path}`;
        }),
      ),
  );
}

const operations = (): ApiOperation[] => apiFeatures(app.deps).flatMap((feature) => feature.operations);

describe('OpenAPI document', () => {
  it('is served at /openapi.json without a token, as OpenAPI 3.1', async () => {
    const response = await app.http.get('/openapi.json');
    expect(response.status).toBe(200);
    expect(response.body.openapi).toBe('3.1.0');
    expect(response.body.paths['/api/v1/optouts'].post.requestBody.content['application/json'].schema.properties.contact).toBeDefined();
  });

  it('is not under /api, where every route needs a token', async () => {
    expect((await app.http.get('/api/openapi.json')).status).toBe(401);
    expect((await app.http.get('/api/docs/')).status).toBe(401);
  });

  it('documents every /api route that is served, and nothing that is not', async () => {
    const document = (await app.http.get('/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect(servedRoutes().length).toBeGreaterThan(0);
    expect([...documented].sort()).toEqual([...servedRoutes()].sort());
  });

  it('has examples for every request body, and every documented example validates', async () => {
    const document = (await app.http.get('/openapi.json')).body as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { examples?: unknown[] } }> }; responses: Record<string, { content?: Record<string, { schema: { examples?: unknown[] } }> }> }>>;
    };
    let checked = 0;
    const validate = (schema: z.ZodType | undefined, examples: unknown[] | undefined, where: string) => {
      for (const example of examples ?? []) {
        const result = schema!.safeParse(example);
        expect({ where, issues: result.success ? [] : result.error.issues }).toEqual({ where, issues: [] });
        checked += 1;
      }
    };
    for (const operation of operations()) {
      const documented = document.paths[operation.path]![operation.method]!;
      if (operation.requestBody) {
        const examples = documented.requestBody!.content['application/json']!.schema.examples;
        expect({ operation: operation.operationId, hasExamples: (examples?.length ?? 0) > 0 }).toEqual({ operation: operation.operationId, hasExamples: true });
        validate(operation.requestBody, examples, `${operation.operationId} request`);
      }
      for (const [status, response] of Object.entries(operation.responses)) {
        validate(response.schema, documented.responses[status]!.content?.['application/json']?.schema.examples, `${operation.operationId} ${status}`);
      }
    }
    expect(checked).toBeGreaterThan(3);
  });

  it('is browsable with Swagger UI at /docs', async () => {
    expect((await app.http.get('/docs')).headers.location).toBe('/docs/');
    const page = await app.http.get('/docs/');
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/swagger-ui-bundle\.js/);
    const initializer = await app.http.get('/docs/swagger-initializer.js');
    expect(initializer.text).toContain("url: '/openapi.json'");
    expect((await app.http.get('/docs/swagger-ui-bundle.js')).status).toBe(200);
  });
});
