/**
 * The ops page (`GET /ops`, no token: the page itself asks for the admin token and sends it with
 * each call) and the one route it needs beyond the contract's: `GET /v1/skus`, every SKU's stock
 * view, a page at a time.
 */
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { parse, skuSchema } from '../../domain/schemas';
import { stockViewSchema } from '../../domain/views';
import type { StockStore } from '../../stock';
import { numberParam } from '../http';
import { renderOpsPage, type OpsPageSettings } from './page';

/** How many SKUs one page of `GET /v1/skus` has at most (and by default). */
export const MAX_SKU_PAGE = 200;
export const skuPageLimitQuery = z.number().int().min(1).max(MAX_SKU_PAGE);
/** What GET /v1/skus answers. */
export const skuPageSchema = z.strictObject({
  skus: z.array(stockViewSchema).max(MAX_SKU_PAGE).meta({ description: 'stock views in SKU order' }),
  next: skuSchema.nullable().meta({ description: 'pass as `after` for the next page; null on the last one' }),
});

export function opsRoutes(stock: StockStore, admin: RequestHandler, settings: OpsPageSettings): Router {
  const router = Router();
  const page = renderOpsPage(settings);

  router.get('/ops', (_req, res) => {
    // The page runs its own inline script and talks to this origin only.
    res.set('Content-Security-Policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:");
    res.type('html').send(page);
  });

  router.get('/v1/skus', admin, async (req, res) => {
    const limit = parse(skuPageLimitQuery, req.query.limit === undefined ? MAX_SKU_PAGE : numberParam(req.query.limit), 'limit');
    const after = req.query.after === undefined ? undefined : parse(skuSchema, req.query.after, 'after');
    const { skus, next } = await stock.listSkus(after, limit);
    // Figures from Redis, as every read: a SKU created a moment ago may not be there yet.
    const { items } = skus.length > 0 ? await stock.getAvailability(skus) : { items: [] };
    res.json({ skus: items, next });
  });
  return router;
}
