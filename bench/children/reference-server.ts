/**
 * Reference server child: a bare Express app with the service's app settings and no middleware.
 *   GET  /v1/skus/:sku       constant JSON (the availability reference)
 *   POST /v1/reservations    409 INSUFFICIENT_STOCK from memory (the flash-sale reference)
 *   GET  /v1/read/:sku       the SKU's stock hash read with one HMGET (the service's own read,
 *                            through ioredis as the API makes it) as JSON: the availability floor
 *                            with the Redis round trip the service cannot skip (with `redisUrl`)
 * Listens on 127.0.0.1 on a free port, like the API with Node's default backlog.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import Redis from 'ioredis';
import { serveService } from './protocol';

serveService<{ keepAliveTimeoutMs: number; redisUrl?: string }, { port: number }>(async (config) => {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const view = { sku: 'REF', name: 'reference', total: 1000, reserved: 0, available: 1000 };
  app.get('/v1/skus/:sku', (_req, res) => {
    res.json(view);
  });
  const refusal = {
    error: {
      code: 'INSUFFICIENT_STOCK',
      message: 'only 0 of REF available, 1 requested',
      details: { sku: 'REF', requested: 1, available: 0 },
    },
  };
  app.post('/v1/reservations', (_req, res) => {
    res.status(409).json(refusal);
  });
  // The API's client options that matter to one read: auto-pipelining on, as src/stock/redis/client.ts makes it.
  const redis = config.redisUrl ? new Redis(config.redisUrl, { enableAutoPipelining: true }) : undefined;
  if (redis)
    app.get('/v1/read/:sku', async (req, res) => {
      const [total, reserved, name] = await redis.hmget(`item:{${req.params.sku}}:stock`, 'total', 'reserved', 'name');
      if (total === null) {
        res.status(404).json({ error: { code: 'SKU_NOT_FOUND', message: 'no such SKU', details: {} } });
        return;
      }
      const t = Number(total);
      const r = Number(reserved ?? 0);
      res.json({ sku: req.params.sku, name, total: t, reserved: r, available: Math.max(0, t - r) });
    });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s)).on('error', reject);
  });
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  return {
    info: { port: (server.address() as AddressInfo).port },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis?.disconnect();
    },
  };
});
