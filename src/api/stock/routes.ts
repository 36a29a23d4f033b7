/**
 * Stock routes (admin writes, client reads) and returns, with the body schemas they validate:
 * handlers parse, call one StockStore method, answer.
 */
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import {
  DEFAULT_MOVEMENTS,
  MAX_AVAILABILITY_SKUS,
  MAX_CHANNEL_LOCATIONS,
  MAX_MOVEMENTS,
  MAX_STOCK,
} from '../../domain/limits';
import {
  channelNameSchema,
  deltaSchema,
  idempotencyKeySchema,
  linesSchema,
  locationIdSchema,
  lowStockThresholdSchema,
  maxPerCustomerSchema,
  nameSchema,
  parse,
  positiveStockSchema,
  reasonSchema,
  reservationIdSchema,
  skuSchema,
  stockFigureSchema,
} from '../../domain/schemas';
import type { StockStore } from '../../stock';
import { bodyOf, numberParam } from '../http';

/** POST /v1/skus: `total` (stock at `default`) or `locations` (contract v3), not both. */
export const createSkuBody = z
  .strictObject({
    sku: skuSchema,
    total: stockFigureSchema.optional(),
    locations: z
      .record(locationIdSchema, stockFigureSchema)
      .superRefine((l, ctx) => {
        const n = Object.keys(l).length;
        if (n < 1 || n > MAX_CHANNEL_LOCATIONS)
          ctx.addIssue({ code: 'custom', message: `must name 1..${MAX_CHANNEL_LOCATIONS} locations` });
        else if (Object.values(l).reduce((sum, units) => sum + units, 0) > MAX_STOCK)
          ctx.addIssue({ code: 'custom', message: `the units must add up to at most ${MAX_STOCK}` });
      })
      // The refinement in JSON Schema terms (the sum is said in words).
      .meta({
        description: `units per location (contract v3): 1..${MAX_CHANNEL_LOCATIONS} locations, each 0..2^31-1, adding up to at most 2^31-1`,
        minProperties: 1,
        maxProperties: MAX_CHANNEL_LOCATIONS,
      })
      .optional(),
    name: nameSchema.optional(),
  })
  .refine((body) => (body.total === undefined) !== (body.locations === undefined), {
    message: 'give either total or locations, not both',
    path: ['total'],
  })
  // The refinement in JSON Schema terms: exactly one of the two.
  .meta({
    oneOf: [
      { required: ['total'], properties: { total: {} } },
      { required: ['locations'], properties: { locations: {} } },
    ],
  });
export const restockBody = z.strictObject({
  quantity: positiveStockSchema,
  reason: reasonSchema.optional(),
  locationId: locationIdSchema.optional(),
});
export const adjustmentBody = z.strictObject({
  delta: deltaSchema,
  reason: reasonSchema,
  locationId: locationIdSchema.optional(),
});
/** POST /v1/skus/:sku/transfers (contract v3). */
export const transferBody = z.strictObject({
  from: locationIdSchema,
  to: locationIdSchema,
  quantity: positiveStockSchema,
  reason: reasonSchema.optional(),
});
/** PATCH /v1/skus/:sku: the fields to change, at least one; null unsets a setting. */
export const updateSkuBody = z
  .strictObject({
    name: nameSchema.optional(),
    lowStockThreshold: lowStockThresholdSchema.nullable().optional(),
    maxPerCustomer: maxPerCustomerSchema.nullable().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, 'give at least one of name, lowStockThreshold, maxPerCustomer')
  // The refinement in JSON Schema terms, for a document generated from this schema.
  .meta({ minProperties: 1 });
export const returnBody = z.strictObject({
  reservationId: reservationIdSchema,
  items: linesSchema,
  reason: reasonSchema.optional(),
  locationId: locationIdSchema.optional(),
});
export const skusQuery = z.array(skuSchema).min(1).max(MAX_AVAILABILITY_SKUS);
export const limitQuery = z.number().int().min(1).max(MAX_MOVEMENTS);

const skuOf = (req: Request) => parse(skuSchema, req.params.sku, 'sku');
/** `?channel=` of a read (contract v3): only that channel's locations count. */
const channelOf = (req: Request) =>
  req.query.channel === undefined ? undefined : parse(channelNameSchema, req.query.channel, 'channel');
const idempotencyKeyOf = (req: Request) => {
  const key = req.get('Idempotency-Key');
  return key === undefined ? undefined : parse(idempotencyKeySchema, key, 'Idempotency-Key');
};

export function stockRoutes(stock: StockStore, role: { client: RequestHandler; admin: RequestHandler }): Router {
  const { client, admin } = role;
  const router = Router();

  router.post('/v1/skus', admin, async (req, res) => {
    const body = bodyOf(req, createSkuBody);
    res.status(201).json(await stock.createSku(body, idempotencyKeyOf(req)));
  });
  router.get('/v1/skus/:sku', client, async (req, res) => {
    const sku = skuOf(req);
    res.json(await stock.readSku(sku, channelOf(req)));
  });
  router.patch('/v1/skus/:sku', admin, async (req, res) => {
    const sku = skuOf(req);
    res.json(await stock.updateSku(sku, bodyOf(req, updateSkuBody)));
  });
  router.get('/v1/availability', client, async (req, res) => {
    const raw =
      typeof req.query.skus === 'string' && req.query.skus !== '' ? req.query.skus.split(',') : req.query.skus;
    const skus = parse(skusQuery, raw, 'skus');
    res.json(await stock.readAvailability(skus, channelOf(req)));
  });
  router.post('/v1/skus/:sku/restock', admin, async (req, res) => {
    const sku = skuOf(req);
    res.json(await stock.restock(sku, bodyOf(req, restockBody), idempotencyKeyOf(req)));
  });
  router.post('/v1/skus/:sku/adjustments', admin, async (req, res) => {
    const sku = skuOf(req);
    res.json(await stock.adjust(sku, bodyOf(req, adjustmentBody), idempotencyKeyOf(req)));
  });
  router.post('/v1/skus/:sku/transfers', admin, async (req, res) => {
    const sku = skuOf(req);
    res.json(await stock.transfer(sku, bodyOf(req, transferBody), idempotencyKeyOf(req)));
  });
  router.get('/v1/skus/:sku/holds', admin, async (req, res) => {
    res.json(await stock.getHolds(skuOf(req)));
  });
  router.get('/v1/skus/:sku/movements', admin, async (req, res) => {
    const sku = skuOf(req);
    const limit = parse(
      limitQuery,
      req.query.limit === undefined ? DEFAULT_MOVEMENTS : numberParam(req.query.limit),
      'limit',
    );
    res.json(await stock.getMovements(sku, limit));
  });
  router.post('/v1/returns', admin, async (req, res) => {
    res.json(await stock.recordReturn(bodyOf(req, returnBody), idempotencyKeyOf(req)));
  });
  return router;
}
