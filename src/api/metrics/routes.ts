/**
 * The SKUs watched for /metrics (admin): only these get stock gauges (stockhold_stock_units), so
 * the number of series stays bounded by METRICS_WATCHED_SKUS_MAX however large the catalogue.
 * An addition to the contract (docs/API.md "Metrics"). Every answer is the watched list after it.
 */
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { parse, skuSchema } from '../../domain/schemas';
import type { Figures } from '../../stock';

/** What the watched-SKU routes answer. */
export const watchedSkusSchema = z.strictObject({
  skus: z.array(skuSchema).meta({ description: 'the watched SKUs, in SKU order' }),
  limit: z.number().int().meta({ description: 'how many may be watched at once (METRICS_WATCHED_SKUS_MAX)' }),
});

export function metricsRoutes(figures: Figures, admin: RequestHandler, maxWatched: number): Router {
  const router = Router();
  const skuOf = (req: Request) => parse(skuSchema, String(req.params.sku), 'sku');
  const answer = (skus: string[]) => ({ skus, limit: maxWatched });

  router.get('/v1/metrics/watched-skus', admin, async (_req, res) => {
    res.json(answer(await figures.watched()));
  });
  router.put('/v1/metrics/watched-skus/:sku', admin, async (req, res) => {
    res.json(answer(await figures.watch(skuOf(req), maxWatched)));
  });
  router.delete('/v1/metrics/watched-skus/:sku', admin, async (req, res) => {
    res.json(answer(await figures.unwatch(skuOf(req))));
  });
  return router;
}
