/**
 * Locations (admin, contract v3): where units are counted. The rows are the stock module's
 * (src/stock/ledger/locations.ts); `default` exists in every deployment.
 */
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { locationIdSchema, nameSchema } from '../../domain/schemas';
import type { StockStore } from '../../stock';
import { bodyOf } from '../http';

export const createLocationBody = z.strictObject({
  locationId: locationIdSchema,
  name: nameSchema,
});

export function locationRoutes(stock: StockStore, admin: RequestHandler): Router {
  const router = Router();
  router.post('/v1/locations', admin, async (req, res) => {
    res.status(201).json(await stock.createLocation(bodyOf(req, createLocationBody)));
  });
  router.get('/v1/locations', admin, async (_req, res) => {
    res.json(await stock.listLocations());
  });
  return router;
}
