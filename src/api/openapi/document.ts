/**
 * The OpenAPI 3.1 document of the HTTP contract, generated from the zod schemas the routes validate
 * with (request bodies, path and query values, headers) and the answer schemas of
 * src/domain/views.ts. The operations themselves, one entry per route, are in
 * src/api/openapi/operations.ts; this module turns them into the document (z.toJSONSchema gives JSON
 * Schema 2020-12, the dialect of OpenAPI 3.1).
 */
import { z } from 'zod';
import type { AnswerCode } from '../../domain/views';
import { statusOfCode } from '../../domain/views';
import { componentSchemas, inline, type JsonSchema } from './json-schema';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** Who may call: anyone, the client token (or the admin one), or the admin token only. */
export type Access = 'public' | 'client' | 'admin';

export interface ApiParameter {
  schema: z.ZodType;
  description: string;
}

export interface ApiQueryParameter extends ApiParameter {
  required?: boolean;
  /** An array sent as one comma-separated value (`?skus=A,B`). */
  commaSeparated?: boolean;
  default?: unknown;
}

export interface ApiAnswer {
  description: string;
  /** A JSON answer: a schema named in the operations' `components`. */
  json?: z.ZodType;
  /** A non-JSON answer: its media type (`text/plain`, `text/html`), with a string body. */
  mediaType?: string;
}

/** One route of the contract. Its schemas are the very ones the route validates with. */
export interface ApiOperation {
  method: HttpMethod;
  /** The path as the route registers it in Express: `/v1/skus/:sku`. */
  path: string;
  access: Access;
  tag: string;
  summary: string;
  description?: string;
  pathParams?: Record<string, ApiParameter>;
  query?: Record<string, ApiQueryParameter>;
  /** Accepts the optional Idempotency-Key header (admin writes that are not reservations). */
  idempotencyKey?: boolean;
  /** A JSON body: a schema named in `components`; `required: false` when the body may be left out. */
  body?: { schema: z.ZodType; required: boolean };
  /** The answers that are not errors, by status. */
  responses: Record<number, ApiAnswer>;
  /**
   * The refusals this route gives besides those every route of its access gives (see
   * `COMMON_ERRORS`), e.g. SKU_NOT_FOUND, UNAVAILABLE.
   */
  errors?: AnswerCode[];
}

export interface ApiDescription {
  /** Every route. */
  operations: ApiOperation[];
  /** The named schemas (`#/components/schemas/<name>`): every body and JSON answer of `operations`. */
  components: Record<string, z.ZodType>;
  /** The schema of every error answer (the envelope with any code). */
  errorComponent: string;
  /** The Idempotency-Key header's rule. */
  idempotencyKey: z.ZodType;
}

/** What each answer code means, for the document and /docs (test/unit/openapi.test.ts checks every code has one). */
export const CODE_MEANINGS: Partial<Record<AnswerCode, string>> & Record<string, string> = {
  INVALID_REQUEST: 'a body, path segment, query value or header breaks a rule; details.field names the first bad field',
  UNAUTHENTICATED: 'no token, or a token the service does not know',
  FORBIDDEN: 'the client token on an admin route',
  NOT_FOUND: 'no such route',
  SKU_NOT_FOUND: 'the SKU does not exist',
  RESERVATION_NOT_FOUND: 'the reservation does not exist',
  SKU_EXISTS: 'the SKU exists already',
  LOCATION_NOT_FOUND: 'a location named in the request does not exist (details: locationId)',
  LOCATION_NOT_IN_CHANNEL:
    "a reservation line's locationId is not one of its channel's (details: locationId, channel, sku)",
  LOCATION_REQUIRED: 'the SKU is stocked at several locations: the write must name one (details: sku, locations)',
  CHANNEL_NOT_FOUND: 'the channel does not exist (details: channel)',
  LOCATION_EXISTS: 'the location exists already (details: locationId)',
  WOULD_OVERSELL: 'the adjustment would leave total below reserved (or below 0)',
  CUSTOMER_LIMIT_EXCEEDED:
    'a line of a SKU with maxPerCustomer would leave the customer holding plus having bought more than that',
  WATCH_LIMIT_REACHED: 'watching one more SKU for /metrics would pass METRICS_WATCHED_SKUS_MAX (details: sku, limit)',
  INSUFFICIENT_STOCK: 'a line asks for more than is available (in Redis, or in PostgreSQL when Redis lost a hold)',
  RESERVATION_ID_CONFLICT: 'the reservation id is in use with another body or cart, or finished already',
  RESERVATION_EXPIRED: 'the reservation had to be HELD and has expired',
  RESERVATION_CANCELLED: 'the reservation had to be HELD and was cancelled',
  RESERVATION_REJECTED: 'the reservation had to be HELD and was rejected',
  RESERVATION_COMMITTED: 'the reservation is committed',
  RESERVATION_NOT_COMMITTED: 'a return for a reservation that is not COMMITTED',
  RETURN_EXCEEDS_SALE: 'a return of more than was sold and not yet returned',
  PAYLOAD_TOO_LARGE: 'a body over 64 KiB',
  UNSUPPORTED_MEDIA_TYPE: 'a body that is not UTF-8',
  QUANTITY_EXCEEDS_HOLD: 'a commit of more than a line holds, or of a SKU the reservation does not hold',
  IDEMPOTENCY_KEY_REUSED: 'the Idempotency-Key was used before with another request',
  UNAVAILABLE: 'Redis, PostgreSQL or Temporal cannot answer in time (or Redis is rebuilding); retry',
  INTERNAL: 'a fault in the service itself',
};

/**
 * Refusals every route of an access level can give: the token check, then (on routes with a token)
 * the JSON body reader, which runs before the route whatever its method.
 */
export const COMMON_ERRORS: Record<Access, AnswerCode[]> = {
  public: ['INTERNAL'],
  client: ['INVALID_REQUEST', 'UNAUTHENTICATED', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'INTERNAL'],
  admin: ['INVALID_REQUEST', 'UNAUTHENTICATED', 'FORBIDDEN', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'INTERNAL'],
};

const SECURITY: Record<Access, Record<string, string[]>[]> = {
  public: [],
  client: [{ clientToken: [] }, { adminToken: [] }],
  admin: [{ adminToken: [] }],
};

/** `/v1/skus/:sku` → `/v1/skus/{sku}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

/** Builds the OpenAPI 3.1 document. Throws when an operation names a schema that is not a component. */
export function buildOpenApiDocument(api: ApiDescription, info: { version: string }): JsonSchema {
  const names = new Map<z.ZodType, string>(Object.entries(api.components).map(([id, schema]) => [schema, id]));
  const ref = (schema: z.ZodType, what: string) => {
    const name = names.get(schema);
    if (!name) throw new Error(`OpenAPI: ${what} uses a schema that is not in components; give it a name there`);
    return { $ref: `#/components/schemas/${name}` };
  };
  if (!names.has(api.components[api.errorComponent]!)) throw new Error(`OpenAPI: no component ${api.errorComponent}`);
  const errorRef = { $ref: `#/components/schemas/${api.errorComponent}` };
  const bodies = new Set(api.operations.flatMap((op) => (op.body ? [op.body.schema] : [])));

  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of api.operations) {
    const where = `${op.method.toUpperCase()} ${op.path}`;
    const path = openApiPath(op.path);
    const item = (paths[path] ??= {});
    if (item[op.method]) throw new Error(`OpenAPI: ${where} is described twice`);

    const parameters: JsonSchema[] = [];
    const named = [...op.path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
    if (
      named.sort().join() !==
      Object.keys(op.pathParams ?? {})
        .sort()
        .join()
    ) {
      throw new Error(`OpenAPI: ${where} must describe exactly its path parameters (${named.join(', ') || 'none'})`);
    }
    for (const [name, p] of Object.entries(op.pathParams ?? {})) {
      parameters.push({
        name,
        in: 'path',
        required: true,
        description: p.description,
        schema: inline(p.schema, 'input'),
      });
    }
    for (const [name, p] of Object.entries(op.query ?? {})) {
      const schema = inline(p.schema, 'input');
      if (p.default !== undefined) schema.default = p.default;
      parameters.push({
        name,
        in: 'query',
        required: p.required ?? false,
        description: p.description,
        ...(p.commaSeparated ? { style: 'form', explode: false } : {}),
        schema,
      });
    }
    if (op.idempotencyKey) {
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description:
          'A repeat with the same key and request answers the first answer again and changes nothing; the same key with another request is 422 IDEMPOTENCY_KEY_REUSED. Keys are global.',
        schema: inline(api.idempotencyKey, 'input'),
      });
    }

    const responses: Record<string, JsonSchema> = {};
    for (const [status, answer] of Object.entries(op.responses)) {
      const content = answer.json
        ? { 'application/json': { schema: ref(answer.json, `${where} ${status}`) } }
        : answer.mediaType
          ? { [answer.mediaType]: { schema: { type: 'string' } } }
          : undefined;
      responses[status] = { description: answer.description, ...(content ? { content } : {}) };
    }
    const codes = [...new Set([...COMMON_ERRORS[op.access], ...(op.errors ?? [])])];
    const byStatus = new Map<number, AnswerCode[]>();
    for (const code of codes) byStatus.set(statusOfCode(code), [...(byStatus.get(statusOfCode(code)) ?? []), code]);
    for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
      if (responses[status])
        throw new Error(`OpenAPI: ${where} answers ${status} both as a success and as ${list.join(', ')}`);
      responses[status] = {
        description: list
          .map((code) => `\`${code}\`: ${CODE_MEANINGS[code] ?? 'see the error codes in docs/API.md'}`)
          .join('; '),
        content: {
          'application/json': {
            // The envelope, with the codes this route can give at this status.
            schema: {
              allOf: [errorRef],
              type: 'object',
              properties: { error: { type: 'object', properties: { code: { type: 'string', enum: list } } } },
            },
          },
        },
      };
    }

    item[op.method] = {
      operationId: operationId(op),
      tags: [op.tag],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      security: SECURITY[op.access],
      'x-stockhold-access': op.access,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(op.body
        ? {
            requestBody: {
              required: op.body.required,
              content: { 'application/json': { schema: ref(op.body.schema, `${where} body`) } },
            },
          }
        : {}),
      responses,
    };
  }

  return {
    openapi: '3.1.1',
    info: {
      title: 'Stockhold',
      version: info.version,
      summary: 'Inventory reservations that never oversell',
      description: [
        'JSON in and out (`/metrics` is Prometheus text, `/docs` HTML). Every error is `{"error": {"code", "message", "details"}}`.',
        'Any other method or path answers 404 `NOT_FOUND` in that shape.',
        'Tokens: `Authorization: Bearer <token>`; the admin token works wherever the client token does.',
        'A GET answers within 2 s and a write within 30 s; past that 503 `UNAVAILABLE` (`details.deadlineMs`).',
      ].join('\n\n'),
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [...new Set(api.operations.map((op) => op.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: componentSchemas(api, bodies),
      securitySchemes: {
        clientToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'INVENTORY_API_TOKEN (storefronts, checkout backends): stock reads and reservations',
        },
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'INVENTORY_ADMIN_TOKEN: stock writes, holds, movements, returns; accepted wherever the client token is',
        },
      },
    },
  };
}

/** `POST /v1/skus/:sku/restock` → `post_v1_skus_sku_restock`: stable and unique per route. */
function operationId(op: ApiOperation): string {
  return `${op.method}_${op.path.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`;
}
