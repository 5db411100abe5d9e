import path from 'node:path';
import express, { type Router } from 'express';
import helmet from 'helmet';
import { z } from 'zod';

/**
 * The OpenAPI 3.1 document of the /api routes, generated from the zod schemas that validate them
 * (zod's JSON Schema output is the 2020-12 dialect OpenAPI 3.1 uses), served at /openapi.json and
 * browsable with Swagger UI at /docs: outside /api, where every route needs a token (the contract).
 */

export const errorSchema = z
  .object({
    error: z.string(),
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ examples: [{ error: 'invalid request', details: [{ path: 'contact.uuid', message: 'Invalid UUID' }] }] });

export interface ApiParameter {
  name: string;
  in: 'header' | 'query' | 'path';
  required?: boolean;
  description: string;
  schema: z.ZodType;
}

export interface ApiOperation {
  method: 'get' | 'post';
  /** OpenAPI path template, e.g. `/api/v1/optouts/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  parameters?: ApiParameter[];
  requestBody?: z.ZodType;
  responses: Record<string, { description: string; schema?: z.ZodType; headers?: Record<string, string> }>;
}

/** Answers every authenticated JSON route may give besides its own. */
export const COMMON_RESPONSES: ApiOperation['responses'] = {
  '400': { description: 'Malformed JSON (`invalid JSON`) or a body that fails validation (`invalid request`, with `details`).', schema: errorSchema },
  '401': { description: 'Missing, unknown or revoked token.', schema: errorSchema },
  '413': { description: 'Body larger than 256 KiB.', schema: errorSchema },
  '415': { description: 'A body declared as something other than JSON.', schema: errorSchema },
};

export const SIMULATION_HEADER: ApiParameter = {
  name: 'X-Mailroom-Mode',
  in: 'header',
  description: "`simulation` (RapidPro's flow simulator): validate and answer as usual with `\"simulated\": true`; store and send nothing.",
  schema: z.enum(['simulation']),
};

/** A schema object for the document: OpenAPI 3.1 speaks JSON Schema 2020-12, minus the `$schema` marker. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): object {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' });
  // zod leaves a schema's examples out of its input form; requests need them most.
  const examples = schema.meta()?.examples;
  return examples && !rest.examples ? { ...rest, examples } : rest;
}

export function buildOpenApiDocument(operations: ApiOperation[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const operation of operations) {
    paths[operation.path] ??= {};
    paths[operation.path]![operation.method] = {
      operationId: operation.operationId,
      summary: operation.summary,
      ...(operation.description ? { description: operation.description } : {}),
      security: [{ token: [] }],
      parameters: (operation.parameters ?? []).map((parameter) => ({
        name: parameter.name,
        in: parameter.in,
        required: parameter.in === 'path' || parameter.required === true,
        description: parameter.description,
        schema: jsonSchema(parameter.schema, 'input'),
      })),
      ...(operation.requestBody
        ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(operation.requestBody, 'input') } } } }
        : {}),
      responses: Object.fromEntries(
        Object.entries(operation.responses).map(([status, response]) => [
          status,
          {
            description: response.description,
            ...(response.headers
              ? { headers: Object.fromEntries(Object.entries(response.headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }])) }
              : {}),
            ...(response.schema ? { content: { 'application/json': { schema: jsonSchema(response.schema, 'output') } } } : {}),
          },
        ]),
      ),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'companion',
      version,
      description:
        'Webhooks for RapidPro flows. Every route needs `Authorization: Token <token>` (create one with ' +
        '`npm run companion -- tokens:create --name NAME`). Bodies are JSON; a body without Content-Type is read as JSON.',
    },
    components: {
      securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'Authorization', description: '`Token <token>`' } },
    },
    paths,
  };
}

// No validator badge: it would send the document to validator.swagger.io.
const SWAGGER_INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout' });
};
`;

/**
 * Swagger UI shares the staff pages' origin (and their session cookie): its page may run only its own
 * scripts, talk only to this origin ("Try it out") and never be framed. It sets inline styles.
 */
const docsSecurityHeaders = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
    },
  },
  // Left to the staff pages' headers, which know whether PUBLIC_URL is https.
  strictTransportSecurity: false,
  xFrameOptions: { action: 'deny' },
});

/** Adds /openapi.json and /docs (Swagger UI's own files, pointed at our document) to the app. */
export function addOpenApiRoutes(app: Router, document: object): void {
  const body = JSON.stringify(document, null, 2);
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(body);
  });
  app.use('/docs', docsSecurityHeaders);
  app.get('/docs', (req, res, next) => {
    // Swagger UI's page loads its files relatively: it must be served from /docs/.
    if (!req.originalUrl.endsWith('/')) res.redirect(301, '/docs/');
    else next();
  });
  app.get('/docs/swagger-initializer.js', (_req, res) => {
    res.type('application/javascript').send(SWAGGER_INITIALIZER);
  });
  app.use('/docs', express.static(path.dirname(require.resolve('swagger-ui-dist/package.json')), { index: 'index.html' }));
}
