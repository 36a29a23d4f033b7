/**
 * Channels (contract v3): how one storefront sees stock, an ordered list of locations and a
 * strategy. Admins put them; a storefront may read its own with the client token. The rows are
 * the stock module's (src/stock/ledger/locations.ts).
 */
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { MAX_CHANNEL_LOCATIONS } from '../../domain/limits';
import { channelNameSchema, parse, skuSchema } from '../../domain/schemas';
import { ALLOCATION_STRATEGIES } from '../../domain/types';
import type { StockStore } from '../../stock';
import { bodyOf } from '../http';

export const putChannelBody = z.strictObject({
  locations: z
    .array(skuSchema)
    .min(1)
    .max(MAX_CHANNEL_LOCATIONS)
    .refine((ids) => new Set(ids).size === ids.length, 'must not name a location twice')
    .meta({ description: 'the location ids in the channel’s order (distinct)', uniqueItems: true }),
  strategy: z.enum(ALLOCATION_STRATEGIES),
});

export function channelRoutes(stock: StockStore, role: { client: RequestHandler; admin: RequestHandler }): Router {
  const router = Router();
  const channelOf = (req: Request) => parse(channelNameSchema, req.params.channel, 'channel');
  router.put('/v1/channels/:channel', role.admin, async (req, res) => {
    const channel = channelOf(req);
    res.json(await stock.putChannel({ channel, ...bodyOf(req, putChannelBody) }));
  });
  router.get('/v1/channels', role.admin, async (_req, res) => {
    res.json(await stock.listChannels());
  });
  router.get('/v1/channels/:channel', role.client, async (req, res) => {
    res.json(await stock.getChannel(channelOf(req)));
  });
  return router;
}
