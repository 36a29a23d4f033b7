import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { StockholdError, type StockStore } from '../stock';
import { createAuth, type Role } from './auth';
import { toContractError } from './errors';
import type { Metrics } from './metrics';
import type { ReservationService } from './reservations';

export type Check = 'redis' | 'postgres' | 'temporal';

export interface AppDeps {
  config: Pick<Config, 'adminToken' | 'apiToken'>;
  stock: StockStore;
  reservations: ReservationService;
  metrics: Metrics;
  logger: Logger;
  /** Each backing store's health, for /readyz. */
  checks: Record<Check, () => Promise<unknown>>;
}

const idempotencyKey = (req: Request) => req.get('Idempotency-Key');

/** Query values that must be numbers: digits only, anything else stays a string and fails validation. */
function numberParam(value: unknown): unknown {
  return typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
}

const UNLOGGED = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One log line per request, when it finishes: method, path, status, time; 5xx at error, 4xx at
 * info, the rest at debug. No headers, so tokens never reach a log line. (Cheaper on the hot path
 * than pino-http's child logger per request: most flash-sale answers are 409s.)
 */
function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    if (UNLOGGED.has(req.path)) return next();
    const start = performance.now();
    res.once('finish', () => {
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
      if (!logger.isLevelEnabled(level)) return;
      logger[level]({ req: { method: req.method, url: req.originalUrl }, res: { statusCode: status }, responseTime: Math.round(performance.now() - start) }, 'request');
    });
    next();
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The contract's HTTP API (../shared/API.md). Handlers are thin: parse, call one domain function, answer. */
export function createApp(deps: AppDeps): Express {
  const { stock, reservations, metrics, logger } = deps;
  const requireRole = createAuth(deps.config);
  // The body is read only after the token is checked: an unauthenticated or unauthorised caller
  // gets 401/403 whatever it sends, and never makes the server parse up to 64 KiB of JSON.
  const json = express.json({ limit: '64kb', strict: false });
  const authenticated = (role: Role): RequestHandler => {
    const check = requireRole(role);
    return (req, res, next) => check(req, res, (err?: unknown) => (err ? next(err) : json(req, res, next)));
  };
  const client = authenticated('client');
  const admin = authenticated('admin');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use(metrics.middleware);
  app.use(requestLog(logger));

  // ---------------------------------------------------------------- service endpoints (no token)
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const entries = await Promise.all(
      Object.entries(deps.checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 2_000);
          return [name, 'ok'] as const;
        } catch {
          return [name, 'down'] as const;
        }
      }),
    );
    const ok = entries.every(([, state]) => state === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'down', checks: Object.fromEntries(entries) });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  // ---------------------------------------------------------------- stock
  app.post('/v1/skus', admin, async (req, res) => {
    res.status(201).json(await stock.createSku(req.body, idempotencyKey(req)));
  });
  app.get('/v1/skus/:sku', client, async (req, res) => {
    res.json(await stock.getStock(req.params.sku));
  });
  app.get('/v1/availability', client, async (req, res) => {
    const skus = typeof req.query.skus === 'string' && req.query.skus !== '' ? req.query.skus.split(',') : req.query.skus;
    res.json(await stock.getAvailability(skus));
  });
  app.post('/v1/skus/:sku/restock', admin, async (req, res) => {
    res.json(await stock.restock(req.params.sku, req.body, idempotencyKey(req)));
  });
  app.post('/v1/skus/:sku/adjustments', admin, async (req, res) => {
    res.json(await stock.adjust(req.params.sku, req.body, idempotencyKey(req)));
  });
  app.get('/v1/skus/:sku/holds', admin, async (req, res) => {
    res.json(await stock.getHolds(req.params.sku));
  });
  app.get('/v1/skus/:sku/movements', admin, async (req, res) => {
    res.json(await stock.getMovements(req.params.sku, req.query.limit === undefined ? 50 : numberParam(req.query.limit)));
  });
  app.post('/v1/returns', admin, async (req, res) => {
    res.json(await stock.recordReturn(req.body, idempotencyKey(req)));
  });

  // ---------------------------------------------------------------- reservations
  app.post('/v1/reservations', client, async (req, res) => {
    try {
      const { created, reservation } = await reservations.create(req.body);
      metrics.reservations.inc({ outcome: 'HELD' });
      res.status(created ? 201 : 200).json(reservation);
    } catch (err) {
      metrics.reservations.inc({ outcome: toContractError(err)?.code ?? 'ERROR' });
      throw err;
    }
  });
  app.get('/v1/reservations/:id', client, async (req, res) => {
    res.json(await reservations.get(req.params.id));
  });
  app.post('/v1/reservations/:id/commit', client, async (req, res) => {
    res.json(await reservations.commit(req.params.id, req.body));
  });
  app.post('/v1/reservations/:id/cancel', client, async (req, res) => {
    res.json(await reservations.cancel(req.params.id, req.body));
  });
  app.post('/v1/reservations/:id/extend', client, async (req, res) => {
    res.json(await reservations.extend(req.params.id, req.body));
  });

  app.use((req, _res, next) => {
    next(new StockholdError('NOT_FOUND', `no route for ${req.method} ${req.path}`));
  });

  const onError: ErrorRequestHandler = (err, req, res, _next) => {
    const type = (err as { type?: string } | null)?.type;
    let error: StockholdError | undefined;
    if (type === 'entity.too.large') error = new StockholdError('PAYLOAD_TOO_LARGE', 'request body is over 64 KiB');
    else if (type === 'entity.parse.failed') error = new StockholdError('INVALID_REQUEST', 'request body is not valid JSON', { field: '(body)' });
    else if (type && /^(encoding|charset)\./.test(type)) error = new StockholdError('UNSUPPORTED_MEDIA_TYPE', String((err as Error).message));
    else error = toContractError(err);
    if (!error) {
      logger.error({ err, req: { method: req.method, url: req.originalUrl } }, 'unhandled error');
      res.status(500).json({ error: { code: 'INTERNAL', message: 'internal error', details: {} } });
      return;
    }
    if (error.status >= 500) logger.warn({ err, req: { method: req.method, url: req.originalUrl } }, error.message);
    res.status(error.status).json({ error: { code: error.code, message: error.message, details: error.details } });
  };
  app.use(onError);
  return app;
}
