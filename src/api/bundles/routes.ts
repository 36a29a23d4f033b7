/**
 * Bundles (contract v3, "Bundles"): a SKU made of other SKUs, with no stock of its own. Admins put
 * them; `GET /v1/skus/:bundle` reads one (src/api/stock/routes.ts). The rows are the stock
 * module's (src/stock/ledger/bundles.ts).
 */
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { MAX_BUNDLE_COMPONENTS } from '../../domain/limits';
import { lineQuantitySchema, nameSchema, parse, skuSchema } from '../../domain/schemas';
import type { StockStore } from '../../stock';
import { bodyOf } from '../http';

export const putBundleBody = z.strictObject({
  name: nameSchema.optional().meta({ description: 'kept as it was when a bundle is put again without one' }),
  components: z
    .array(z.strictObject({ sku: skuSchema, quantity: lineQuantitySchema }))
    .min(1)
    .max(MAX_BUNDLE_COMPONENTS)
    .refine((parts) => new Set(parts.map((p) => p.sku)).size === parts.length, 'must not name a SKU twice')
    .meta({ description: 'existing stocked SKUs (not bundles), each once, with the units one bundle takes' }),
});

export function bundleRoutes(stock: StockStore, admin: RequestHandler): Router {
  const router = Router();
  router.put('/v1/bundles/:sku', admin, async (req, res) => {
    const sku = parse(skuSchema, req.params.sku, 'sku');
    res.json(await stock.putBundle(sku, bodyOf(req, putBundleBody)));
  });
  return router;
}
