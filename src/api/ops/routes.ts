/**
 * The ops page (`GET /ops`, no token: the page itself asks for the admin token and sends it with
 * each call) and the one route it needs beyond the contract's: `GET /v1/skus`, every SKU's stock
 * view, a page at a time. The page is static files in public/ops/ (index.html, ops.js, ops.css);
 * the only thing filled in is where the Temporal Web UI is, for the links to reservations.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { parse, skuSchema } from '../../domain/schemas';
import { stockViewSchema } from '../../domain/views';
import { PUBLIC_DIR } from '../../paths';
import type { StockStore } from '../../stock';
import { numberParam } from '../http';

const OPS_DIR = path.join(PUBLIC_DIR, 'ops');
const OPS_ASSETS = new Set(['/ops.js', '/ops.css']);

/** What the page needs to know about the deployment (given to it in a <meta> element). */
export interface OpsPageSettings {
  /** The Temporal Web UI, for links to reservations' workflows; without it there are no links. */
  temporalUiUrl?: string;
  temporalNamespace: string;
}

/** Its own files only, and its calls to this origin only: no inline script or style, nothing from elsewhere. */
export const OPS_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const escapeAttribute = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** public/ops/index.html with the settings in its `stockhold-ops-settings` <meta> element. */
function opsPage(settings: OpsPageSettings): string {
  const html = readFileSync(path.join(OPS_DIR, 'index.html'), 'utf8');
  const placeholder = '<meta name="stockhold-ops-settings" content="{}" />';
  if (!html.includes(placeholder)) throw new Error(`${OPS_DIR}/index.html has no ${placeholder}`);
  return html.replace(
    placeholder,
    `<meta name="stockhold-ops-settings" content="${escapeAttribute(JSON.stringify(settings))}" />`,
  );
}

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
  const page = opsPage(settings);

  router.get('/ops', (_req, res) => {
    res.set({
      'Content-Security-Policy': OPS_PAGE_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    });
    res.type('html').send(page);
  });
  // Its script and stylesheet (/ops/ops.js, /ops/ops.css); any other path falls through to 404.
  const assets = express.static(OPS_DIR, {
    index: false,
    redirect: false,
    setHeaders: (res) => res.set('X-Content-Type-Options', 'nosniff'),
  });
  router.use('/ops', (req, res, next) => (OPS_ASSETS.has(req.path) ? assets(req, res, next) : next()));

  router.get('/v1/skus', admin, async (req, res) => {
    const limit = parse(
      skuPageLimitQuery,
      req.query.limit === undefined ? MAX_SKU_PAGE : numberParam(req.query.limit),
      'limit',
    );
    const after = req.query.after === undefined ? undefined : parse(skuSchema, req.query.after, 'after');
    const { skus, next } = await stock.listSkus(after, limit);
    // Figures from Redis, as every read: a SKU created a moment ago may not be there yet.
    const { items } = skus.length > 0 ? await stock.getAvailability(skus) : { items: [] };
    res.json({ skus: items, next });
  });
  return router;
}
