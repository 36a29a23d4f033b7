/**
 * The whole HTTP API as the OpenAPI document (./document.ts) describes it: the service endpoints
 * here, and each resource's routes from the `operations.ts` beside its routes (src/api/<resource>/),
 * with the very schemas those routes validate with. A route added to Express without an entry
 * fails test/unit/openapi.test.ts.
 *
 * To add a route: give its body (and any new answer) a name in `components`, then add one
 * `ApiOperation` to its resource's operations: method, Express path, access, its path/query
 * parameters, `idempotencyKey` if it reads that header, `body`, its success answers, and the
 * refusals it gives besides the common ones (auth, body reading, 500).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { idempotencyKeySchema } from '../../domain/schemas';
import {
  availabilitySchema,
  bundleSchema,
  bundleViewSchema,
  channelListSchema,
  channelSchema,
  errorEnvelopeSchema,
  healthSchema,
  holdsSchema,
  locationListSchema,
  locationSchema,
  movementsPageSchema,
  readinessSchema,
  reservationViewSchema,
  returnResultSchema,
  skuReadSchema,
  stockViewSchema,
} from '../../domain/views';
import { PROJECT_ROOT } from '../../paths';
import type { ApiDescription, ApiOperation } from './document';
import { bundleOperations } from '../bundles/operations';
import { channelOperations } from '../channels/operations';
import { locationOperations } from '../locations/operations';
import { reservationOperations } from '../reservations/operations';
import { stockOperations } from '../stock/operations';
import { webhookOperations } from '../webhooks/operations';
import { watchedSkusSchema } from '../metrics/routes';
import { skuPageSchema } from '../ops/routes';
import { reservationBodies } from '../reservations/routes';
import { adjustmentBody, createSkuBody, restockBody, returnBody, transferBody, updateSkuBody } from '../stock/routes';
import { putBundleBody } from '../bundles/routes';
import { putChannelBody } from '../channels/routes';
import { createLocationBody } from '../locations/routes';
import { createdWebhookSchema, createWebhookBody, deliveryListSchema, webhookListSchema } from '../webhooks/routes';

/** What GET /openapi.json answers: an OpenAPI 3.1 document (its full shape is the OpenAPI specification's). */
const openApiDocumentSchema = z.looseObject({
  openapi: z.string().regex(/^3\.1\.\d+$/),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
  components: z.record(z.string(), z.unknown()),
});

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
      responses: {
        200: {
          description: 'OpenAPI 3.1, generated from the schemas the routes validate with',
          json: openApiDocumentSchema,
        },
      },
    },
    {
      method: 'get',
      path: '/ops',
      access: 'public',
      tag: 'Service',
      summary: 'The ops page',
      description:
        'Asks for the admin token in the browser and calls the admin routes with it; the page itself carries no data.',
      responses: {
        200: {
          description:
            'an HTML page; its script and style are /ops/ops.js and /ops/ops.css (no inline script; it talks to this origin only)',
          mediaType: 'text/html',
        },
      },
    },
    {
      method: 'get',
      path: '/docs',
      access: 'public',
      tag: 'Service',
      summary: 'This document as a page to read and try',
      responses: {
        200: {
          description:
            'Swagger UI over this document (swagger-ui-dist, served from /docs/assets/; nothing loaded from elsewhere)',
          mediaType: 'text/html',
        },
      },
    },
  ];
}

/** The whole HTTP API; `maxTtlSeconds` is the service's RESERVATION_MAX_TTL_SECONDS, as the routes use it. */
export function apiDescription(config: { maxTtlSeconds: number }): ApiDescription {
  const bodies = reservationBodies(config.maxTtlSeconds);
  return {
    operations: [
      ...serviceOperations(),
      ...stockOperations(),
      ...reservationOperations(bodies),
      ...locationOperations(),
      ...channelOperations(),
      ...bundleOperations(),
      ...webhookOperations(),
    ],
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
      TransferBody: transferBody,
      ReturnBody: returnBody,
      CreateReservationBody: bodies.create,
      CommitBody: bodies.commit,
      CancelBody: bodies.cancel,
      ExtendBody: bodies.extend,
      Location: locationSchema,
      LocationList: locationListSchema,
      CreateLocationBody: createLocationBody,
      Channel: channelSchema,
      ChannelList: channelListSchema,
      PutChannelBody: putChannelBody,
      Bundle: bundleSchema,
      BundleView: bundleViewSchema,
      SkuRead: skuReadSchema,
      PutBundleBody: putBundleBody,
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
    return String(
      (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: unknown }).version ??
        '0.0.0',
    );
  } catch {
    return '0.0.0';
  }
}
