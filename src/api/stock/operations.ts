/** The stock routes (./routes.ts) and returns, described for the OpenAPI document (src/api/openapi/). */
import { DEFAULT_MOVEMENTS } from '../../domain/limits';
import { channelNameSchema, skuSchema } from '../../domain/schemas';
import {
  availabilitySchema,
  holdsSchema,
  movementsPageSchema,
  returnResultSchema,
  skuReadSchema,
  stockViewSchema,
} from '../../domain/views';
import type { ApiOperation } from '../openapi/document';
import { MAX_SKU_PAGE, skuPageLimitQuery, skuPageSchema } from '../ops/routes';
import { watchedSkuOperations } from '../metrics/operations';
import {
  adjustmentBody,
  createSkuBody,
  limitQuery,
  restockBody,
  returnBody,
  skusQuery,
  transferBody,
  updateSkuBody,
} from './routes';

const sku = { sku: { schema: skuSchema, description: 'the SKU' } };
const channelDescription =
  "contract v3: count only this channel's locations (from Redis), and list them in the view's `locations`, by id; the view's figures are theirs summed, its `available` what each has free. Without it every location counts, and `locations` lists every level of a SKU stocked elsewhere than `default` (a SKU only ever at `default` gets a v2 view)";

/** The routes of ./routes.ts: stock, and returns. */
export function stockOperations(): ApiOperation[] {
  return [
    {
      method: 'post',
      path: '/v1/skus',
      access: 'admin',
      tag: 'Stock',
      summary: 'Create a SKU',
      description:
        'The ledger gets an `initial` movement of `total` at `default`, or (contract v3) one per entry of `locations`. `name` defaults to "".',
      idempotencyKey: true,
      body: { schema: createSkuBody, required: true },
      responses: { 201: { description: 'the stock view (reserved 0)', json: stockViewSchema } },
      errors: ['SKU_EXISTS', 'LOCATION_NOT_FOUND', 'IDEMPOTENCY_KEY_REUSED', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/skus/:sku',
      access: 'client',
      tag: 'Stock',
      summary: 'Stock of a SKU (or of a bundle)',
      description:
        "From Redis only. A bundle (contract v3) answers a bundle view: its availability from its components' (through `?channel=` when given).",
      pathParams: sku,
      query: { channel: { schema: channelNameSchema, description: channelDescription } },
      responses: {
        200: { description: 'the stock view, or a bundle view', json: skuReadSchema },
      },
      errors: ['SKU_NOT_FOUND', 'CHANNEL_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'patch',
      path: '/v1/skus/:sku',
      access: 'admin',
      tag: 'Stock',
      summary: "Change a SKU's name and settings",
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
      query: {
        skus: {
          schema: skusQuery,
          required: true,
          commaSeparated: true,
          description: '1..100 SKUs, comma-separated; a SKU named twice is answered once',
        },
        channel: { schema: channelNameSchema, description: channelDescription },
      },
      responses: { 200: { description: 'the SKUs that exist, and those that do not', json: availabilitySchema } },
      errors: ['CHANNEL_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/skus/:sku/restock',
      access: 'admin',
      tag: 'Stock',
      summary: 'Restock',
      description:
        'The ledger gets a `restock` movement at `locationId` (without it: the SKU\'s only location; a SKU stocked at several is 400 LOCATION_REQUIRED). A restock to a location where the SKU has no level creates it. A total past 2^31-1 is 400 (`field: "quantity"`).',
      pathParams: sku,
      idempotencyKey: true,
      body: { schema: restockBody, required: true },
      responses: { 200: { description: 'the stock view with total raised', json: stockViewSchema } },
      errors: ['SKU_NOT_FOUND', 'LOCATION_NOT_FOUND', 'LOCATION_REQUIRED', 'IDEMPOTENCY_KEY_REUSED', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/skus/:sku/adjustments',
      access: 'admin',
      tag: 'Stock',
      summary: 'Adjust (counts, damage, shrinkage)',
      description:
        'The ledger gets an `adjustment` movement at `locationId` (as restock chooses it). Held units stay sellable to their holders: WOULD_OVERSELL is judged for the SKU and for the location.',
      pathParams: sku,
      idempotencyKey: true,
      body: { schema: adjustmentBody, required: true },
      responses: { 200: { description: 'the stock view', json: stockViewSchema } },
      errors: [
        'SKU_NOT_FOUND',
        'LOCATION_NOT_FOUND',
        'LOCATION_REQUIRED',
        'WOULD_OVERSELL',
        'IDEMPOTENCY_KEY_REUSED',
        'UNAVAILABLE',
      ],
    },
    {
      method: 'post',
      path: '/v1/skus/:sku/transfers',
      access: 'admin',
      tag: 'Stock',
      summary: 'Transfer units between locations',
      description:
        'Contract v3: moves unreserved units from `from` to `to` in one step (a `transfer_out` and a `transfer_in` movement sharing a `transferId`, and one Redis script). Units reserved at `from` never move: 409 WOULD_OVERSELL when its available is short.',
      pathParams: sku,
      idempotencyKey: true,
      body: { schema: transferBody, required: true },
      responses: { 200: { description: "the stock view (the SKU's figures do not change)", json: stockViewSchema } },
      errors: ['SKU_NOT_FOUND', 'LOCATION_NOT_FOUND', 'WOULD_OVERSELL', 'IDEMPOTENCY_KEY_REUSED', 'UNAVAILABLE'],
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
      query: {
        limit: {
          schema: limitQuery,
          default: DEFAULT_MOVEMENTS,
          description: 'at most this many movements, written as digits',
        },
      },
      responses: { 200: { description: 'the movements', json: movementsPageSchema } },
      errors: ['SKU_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/skus',
      access: 'admin',
      tag: 'Stock',
      summary: 'Every SKU, a page at a time (for the ops page)',
      description:
        'An addition to the contract: the SKUs PostgreSQL knows in SKU order, with their figures from Redis.',
      query: {
        limit: {
          schema: skuPageLimitQuery,
          default: MAX_SKU_PAGE,
          description: 'at most this many SKUs, written as digits',
        },
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
      description:
        "Raises each SKU's total; the ledger gets a `return` movement per line and location: at `locationId` when given, else back where the units were sold, the last allocated first (contract v3). All lines or none.",
      idempotencyKey: true,
      body: { schema: returnBody, required: true },
      responses: { 200: { description: 'what this call returned, per line', json: returnResultSchema } },
      errors: [
        'RESERVATION_NOT_FOUND',
        'RESERVATION_NOT_COMMITTED',
        'RETURN_EXCEEDS_SALE',
        'LOCATION_NOT_FOUND',
        'IDEMPOTENCY_KEY_REUSED',
        'UNAVAILABLE',
      ],
    },
  ];
}
