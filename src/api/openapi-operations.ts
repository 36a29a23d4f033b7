/**
 * Every route of the HTTP API, described for the OpenAPI document (openapi.ts): one entry per
 * route, in the order and groups of the route files, with the very schemas those routes validate
 * with. A route added to Express without an entry here fails test/unit/openapi.test.ts.
 *
 * To add a route: give its body (and any new answer) a name in `components`, then add one
 * `ApiOperation` to the group of its route file: method, Express path, access, its path/query
 * parameters, `idempotencyKey` if it reads that header, `body`, its success answers, and the
 * refusals it gives besides the common ones (auth, body reading, 500).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_MOVEMENTS } from '../domain/limits';
import { idempotencyKeySchema, reservationIdSchema, skuSchema } from '../domain/schemas';
import {
  availabilitySchema,
  errorEnvelopeSchema,
  healthSchema,
  holdsSchema,
  movementsPageSchema,
  readinessSchema,
  reservationViewSchema,
  returnResultSchema,
  stockViewSchema,
} from '../domain/views';
import { PROJECT_ROOT } from '../paths';
import type { ApiDescription, ApiOperation } from './openapi';
import { watchedSkusSchema } from './metrics-routes';
import { MAX_SKU_PAGE, skuPageLimitQuery, skuPageSchema } from './ops-routes';
import { reservationBodies } from './reservation-routes';
import { adjustmentBody, createSkuBody, limitQuery, restockBody, returnBody, skusQuery, updateSkuBody } from './stock-routes';
import { MAX_DELIVERIES_LISTED } from '../webhooks/store';
import { createdWebhookSchema, createWebhookBody, deliveryListSchema, deliveryStatusQuery, webhookListSchema } from './webhook-routes';

/** What GET /openapi.json answers: an OpenAPI 3.1 document (its full shape is the OpenAPI specification's). */
const openApiDocumentSchema = z.looseObject({
  openapi: z.string().regex(/^3\.1\.\d+$/),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
  components: z.record(z.string(), z.unknown()),
});

const sku = { sku: { schema: skuSchema, description: 'the SKU' } };
const reservationId = { id: { schema: reservationIdSchema, description: 'the reservation id' } };

/** The routes of `createApp` (app.ts): service endpoints. */
function serviceOperations(): ApiOperation[] {
  return [
    {
      method: 'get',
      path: '/healthz',
      access: 'public',
      tag: 'Service',
      summary: 'Liveness',
      responses: { 200: { description: 'the process runs', json: healthSchema } },
    },
    {
      method: 'get',
      path: '/readyz',
      access: 'public',
      tag: 'Service',
      summary: 'Readiness of Redis, PostgreSQL and Temporal',
      description:
        'Each check has 1.5 s. Ready means a client is served now: Redis is "loading" while its counters are rebuilt after a loss (stock reads answer 503 then), Temporal is "no-worker" while no worker polls the task queue.',
      responses: {
        200: { description: 'every check is ok', json: readinessSchema },
        503: { description: 'a check failed: it is marked "down", "loading" or "no-worker"', json: readinessSchema },
      },
    },
    {
      method: 'get',
      path: '/metrics',
      access: 'public',
      tag: 'Service',
      summary: 'Prometheus metrics',
      responses: { 200: { description: 'Prometheus text format', mediaType: 'text/plain' } },
    },
    {
      method: 'get',
      path: '/openapi.json',
      access: 'public',
      tag: 'Service',
      summary: 'This document',
      responses: { 200: { description: 'OpenAPI 3.1, generated from the schemas the routes validate with', json: openApiDocumentSchema } },
    },
    {
      method: 'get',
      path: '/ops',
      access: 'public',
      tag: 'Service',
      summary: 'The ops page',
      description: 'Asks for the admin token in the browser and calls the admin routes with it; the page itself carries no data.',
      responses: { 200: { description: 'a self-contained HTML page (inline script, talks to this origin only)', mediaType: 'text/html' } },
    },
    {
      method: 'get',
      path: '/docs',
      access: 'public',
      tag: 'Service',
      summary: 'This document as a page to read',
      responses: { 200: { description: 'a self-contained HTML page (no scripts, nothing loaded from elsewhere)', mediaType: 'text/html' } },
    },
  ];
}

/** The routes of stock-routes.ts: stock, and returns. */
function stockOperations(): ApiOperation[] {
  return [
    {
      method: 'post',
      path: '/v1/skus',
      access: 'admin',
      tag: 'Stock',
      summary: 'Create a SKU',
      description: 'The ledger gets an `initial` movement of `total`. `name` defaults to "".',
      idempotencyKey: true,
      body: { schema: createSkuBody, required: true },
      responses: { 201: { description: 'the stock view (reserved 0)', json: stockViewSchema } },
      errors: ['SKU_EXISTS', 'IDEMPOTENCY_KEY_REUSED', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/skus/:sku',
      access: 'client',
      tag: 'Stock',
      summary: 'Stock of a SKU',
      description: 'From Redis only.',
      pathParams: sku,
      responses: { 200: { description: 'the stock view', json: stockViewSchema } },
      errors: ['SKU_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'patch',
      path: '/v1/skus/:sku',
      access: 'admin',
      tag: 'Stock',
      summary: 'Change a SKU\'s name and settings',
      description:
        'The fields given change, at least one; `null` unsets a setting. `maxPerCustomer` limits what one customer may hold plus have bought of the SKU (see POST /v1/reservations); `lowStockThreshold` is stored and shown.',
      pathParams: sku,
      body: { schema: updateSkuBody, required: true },
      responses: { 200: { description: 'the stock view with the new settings', json: stockViewSchema } },
      errors: ['SKU_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/availability',
      access: 'client',
      tag: 'Stock',
      summary: 'Stock of several SKUs',
      query: { skus: { schema: skusQuery, required: true, commaSeparated: true, description: '1..100 SKUs, comma-separated; a SKU named twice is answered once' } },
      responses: { 200: { description: 'the SKUs that exist, and those that do not', json: availabilitySchema } },
      errors: ['UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/skus/:sku/restock',
      access: 'admin',
      tag: 'Stock',
      summary: 'Restock',
      description: 'The ledger gets a `restock` movement. A total past 2^31-1 is 400 (`field: "quantity"`).',
      pathParams: sku,
      idempotencyKey: true,
      body: { schema: restockBody, required: true },
      responses: { 200: { description: 'the stock view with total raised', json: stockViewSchema } },
      errors: ['SKU_NOT_FOUND', 'IDEMPOTENCY_KEY_REUSED', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/skus/:sku/adjustments',
      access: 'admin',
      tag: 'Stock',
      summary: 'Adjust (counts, damage, shrinkage)',
      description: 'The ledger gets an `adjustment` movement. Held units stay sellable to their holders.',
      pathParams: sku,
      idempotencyKey: true,
      body: { schema: adjustmentBody, required: true },
      responses: { 200: { description: 'the stock view', json: stockViewSchema } },
      errors: ['SKU_NOT_FOUND', 'WOULD_OVERSELL', 'IDEMPOTENCY_KEY_REUSED', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/skus/:sku/holds',
      access: 'admin',
      tag: 'Stock',
      summary: 'Who holds the stock now',
      pathParams: sku,
      responses: { 200: { description: 'holds from Redis, deadlines from PostgreSQL', json: holdsSchema } },
      errors: ['SKU_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/skus/:sku/movements',
      access: 'admin',
      tag: 'Stock',
      summary: 'The ledger, newest first',
      pathParams: sku,
      query: { limit: { schema: limitQuery, default: DEFAULT_MOVEMENTS, description: 'at most this many movements, written as digits' } },
      responses: { 200: { description: 'the movements', json: movementsPageSchema } },
      errors: ['SKU_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/skus',
      access: 'admin',
      tag: 'Stock',
      summary: 'Every SKU, a page at a time (for the ops page)',
      description: 'An addition to the contract: the SKUs PostgreSQL knows in SKU order, with their figures from Redis.',
      query: {
        limit: { schema: skuPageLimitQuery, default: MAX_SKU_PAGE, description: 'at most this many SKUs, written as digits' },
        after: { schema: skuSchema, description: 'the `next` of the previous page' },
      },
      responses: { 200: { description: 'one page of stock views', json: skuPageSchema } },
      errors: ['UNAVAILABLE'],
    },
    ...watchedSkuOperations(),
    {
      method: 'post',
      path: '/v1/returns',
      access: 'admin',
      tag: 'Returns',
      summary: 'Return units of a committed reservation',
      description: "Raises each SKU's total; the ledger gets a `return` movement per line. All lines or none.",
      idempotencyKey: true,
      body: { schema: returnBody, required: true },
      responses: { 200: { description: 'what this call returned, per line', json: returnResultSchema } },
      errors: ['RESERVATION_NOT_FOUND', 'RESERVATION_NOT_COMMITTED', 'RETURN_EXCEEDS_SALE', 'IDEMPOTENCY_KEY_REUSED', 'UNAVAILABLE'],
    },
  ];
}

/** The routes of reservation-routes.ts. */
function reservationOperations(bodies: ReturnType<typeof reservationBodies>): ApiOperation[] {
  return [
    {
      method: 'post',
      path: '/v1/reservations',
      access: 'client',
      tag: 'Reservations',
      summary: 'Hold a cart',
      description: 'All lines or none. The server makes a UUID when `reservationId` is left out; the reservation id is the idempotency key.',
      body: { schema: bodies.create, required: true },
      responses: {
        201: { description: 'held: the view, status HELD, after the hold is applied in Redis', json: reservationViewSchema },
        200: { description: 'a repeat (same id and body): the current view; nothing more is held', json: reservationViewSchema },
      },
      errors: ['SKU_NOT_FOUND', 'CUSTOMER_LIMIT_EXCEEDED', 'INSUFFICIENT_STOCK', 'RESERVATION_ID_CONFLICT', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/reservations/:id',
      access: 'client',
      tag: 'Reservations',
      summary: 'A reservation',
      pathParams: reservationId,
      responses: { 200: { description: 'the view', json: reservationViewSchema } },
      errors: ['RESERVATION_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/reservations/:id/commit',
      access: 'client',
      tag: 'Reservations',
      summary: 'Commit (sell) what is held',
      description: 'Without `items` everything held is sold; with `items` at most the held quantity per named line, and the rest is released. The body may be left out. A repeat answers the same COMMITTED view.',
      pathParams: reservationId,
      body: { schema: bodies.commit, required: false },
      responses: { 200: { description: 'the view, status COMMITTED, after the sale is durable in PostgreSQL', json: reservationViewSchema } },
      errors: ['RESERVATION_NOT_FOUND', 'RESERVATION_EXPIRED', 'RESERVATION_CANCELLED', 'RESERVATION_REJECTED', 'QUANTITY_EXCEEDS_HOLD', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/reservations/:id/cancel',
      access: 'client',
      tag: 'Reservations',
      summary: 'Cancel and give the hold back',
      description: 'The body may be left out.',
      pathParams: reservationId,
      body: { schema: bodies.cancel, required: false },
      responses: { 200: { description: 'the view, status CANCELLED (EXPIRED or REJECTED when it already was)', json: reservationViewSchema } },
      errors: ['RESERVATION_NOT_FOUND', 'RESERVATION_COMMITTED', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/reservations/:id/extend',
      access: 'client',
      tag: 'Reservations',
      summary: 'Move the deadline to now + ttlSeconds',
      description: 'This may also shorten the deadline.',
      pathParams: reservationId,
      body: { schema: bodies.extend, required: true },
      responses: { 200: { description: 'the view with the new expiresAt', json: reservationViewSchema } },
      errors: ['RESERVATION_NOT_FOUND', 'RESERVATION_EXPIRED', 'RESERVATION_CANCELLED', 'RESERVATION_REJECTED', 'RESERVATION_COMMITTED', 'UNAVAILABLE'],
    },
  ];
}

const webhookId = { id: { schema: z.string(), description: 'the webhook id (a UUID); any other value is 404 NOT_FOUND' } };

/** The routes of webhook-routes.ts. */
function webhookOperations(): ApiOperation[] {
  return [
    {
      method: 'post',
      path: '/v1/webhooks',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'Subscribe a URL to events',
      description:
        'Every event of the listed types (or `["*"]`: all) committed from now on is POSTed to `url`, signed with `secret` (`Stockhold-Signature`). The secret is generated when left out, and shown only in this answer.',
      body: { schema: createWebhookBody, required: true },
      responses: { 201: { description: 'the subscription with its secret', json: createdWebhookSchema } },
      errors: ['UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/webhooks',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'The subscriptions (without their secrets)',
      responses: { 200: { description: 'the subscriptions, oldest first', json: webhookListSchema } },
      errors: ['UNAVAILABLE'],
    },
    {
      method: 'delete',
      path: '/v1/webhooks/:id',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'Unsubscribe',
      description: 'Its pending deliveries stop (they become `failed`, last error "subscription deleted").',
      pathParams: webhookId,
      responses: { 204: { description: 'deleted' } },
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/webhooks/:id/deliveries',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'Deliveries of a subscription, newest event first',
      description: `At most ${MAX_DELIVERIES_LISTED}.`,
      pathParams: webhookId,
      query: { status: { schema: deliveryStatusQuery, description: 'only deliveries in this status' } },
      responses: { 200: { description: 'the deliveries', json: deliveryListSchema } },
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/webhooks/:id/deliveries/:deliveryId/retry',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'Send a delivery again',
      description: 'It becomes `pending`, due now, with a new 24-hour retry window, in its place in event order.',
      pathParams: { ...webhookId, deliveryId: { schema: z.string(), description: 'the delivery id (a UUID)' } },
      responses: { 202: { description: 'queued' } },
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
    },
  ];
}

/** The whole HTTP API; `maxTtlSeconds` is the service's RESERVATION_MAX_TTL_SECONDS, as the routes use it. */
export function apiDescription(config: { maxTtlSeconds: number }): ApiDescription {
  const bodies = reservationBodies(config.maxTtlSeconds);
  return {
    operations: [...serviceOperations(), ...stockOperations(), ...reservationOperations(bodies), ...webhookOperations()],
    components: {
      StockView: stockViewSchema,
      Availability: availabilitySchema,
      MovementsPage: movementsPageSchema,
      SkuPage: skuPageSchema,
      WatchedSkus: watchedSkusSchema,
      Holds: holdsSchema,
      ReservationView: reservationViewSchema,
      ReturnResult: returnResultSchema,
      Health: healthSchema,
      Readiness: readinessSchema,
      OpenApiDocument: openApiDocumentSchema,
      Error: errorEnvelopeSchema(),
      CreateSkuBody: createSkuBody,
      UpdateSkuBody: updateSkuBody,
      RestockBody: restockBody,
      AdjustmentBody: adjustmentBody,
      ReturnBody: returnBody,
      CreateReservationBody: bodies.create,
      CommitBody: bodies.commit,
      CancelBody: bodies.cancel,
      ExtendBody: bodies.extend,
      CreateWebhookBody: createWebhookBody,
      CreatedWebhook: createdWebhookSchema,
      WebhookList: webhookListSchema,
      DeliveryList: deliveryListSchema,
    },
    errorComponent: 'Error',
    idempotencyKey: idempotencyKeySchema,
  };
}

/** The service's version (package.json), for the document's `info.version`. */
export function serviceVersion(): string {
  try {
    return String((JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '0.0.0');
  } catch {
    return '0.0.0';
  }
}

/** GET, PUT and DELETE of the SKUs watched for /metrics (src/api/metrics-routes.ts). */
function watchedSkuOperations(): ApiOperation[] {
  const answer = (description: string) => ({ 200: { description, json: watchedSkusSchema } });
  return [
    {
      method: 'get',
      path: '/v1/metrics/watched-skus',
      access: 'admin',
      tag: 'Metrics',
      summary: 'The SKUs with stock gauges in /metrics',
      description: 'An addition to the contract: `/metrics` has `stockhold_stock_units{sku}` for these SKUs only, so its series stay bounded.',
      responses: answer('the watched SKUs'),
      errors: ['UNAVAILABLE'],
    },
    {
      method: 'put',
      path: '/v1/metrics/watched-skus/:sku',
      access: 'admin',
      tag: 'Metrics',
      summary: 'Watch a SKU',
      description: 'Idempotent. At most `limit` SKUs (METRICS_WATCHED_SKUS_MAX) at once: one more is 409 `WATCH_LIMIT_REACHED`.',
      pathParams: sku,
      responses: answer('the watched SKUs, this one included'),
      errors: ['SKU_NOT_FOUND', 'WATCH_LIMIT_REACHED', 'UNAVAILABLE'],
    },
    {
      method: 'delete',
      path: '/v1/metrics/watched-skus/:sku',
      access: 'admin',
      tag: 'Metrics',
      summary: 'Stop watching a SKU',
      description: 'Idempotent: a SKU not watched is no error. Its series leave `/metrics` at the next scrape.',
      pathParams: sku,
      responses: answer('the watched SKUs, this one left out'),
      errors: ['UNAVAILABLE'],
    },
  ];
}
