/**
 * The API process with proposed changes applied at run time, for before/after measurements in the
 * same benchmark run (src/ stays as it is). Started like `node lib/api/server.js`, with
 * BENCH_API_VARIANTS naming the changes (comma-separated):
 *
 *   light-logging  pino-http (a child logger per request, its bindings serialised eagerly, three
 *                  listeners) replaced by one 'finish' listener that logs the same fields at the same
 *                  levels, and only when that level is enabled;
 *   admission      POST /v1/reservations admits at most `available` units per SKU into Temporal at
 *                  once in this process; the other callers wait for those to settle and re-read
 *                  Redis (so a flash sale starts about `stock` workflows instead of one per buyer).
 *                  It never refuses by itself: refusals still come from Redis (the fast path) or the
 *                  Lua hold, so nothing is undersold;
 *   backlog        the listening socket's backlog raised from Node's 511 to 4096 (net.core.somaxconn).
 *
 * Each is the run-time equivalent of a small patch to src/ (bench/FINDINGS.md has the diffs).
 */
import type { Express, RequestHandler } from 'express';
import { performance } from 'node:perf_hooks';
import * as appModule from '../../api/app';
import { onShutdownSignal, startApi } from '../../api/server';
import { AdmissionGate } from '../../api/admission';
import { ReservationService } from '../../api/reservations';
import { loadConfig } from '../../config';
import { createLogger, type Logger } from '../../logger';
import { keys, type StockRedis } from '../../stock';

const variants = new Set((process.env.BENCH_API_VARIANTS ?? '').split(',').filter(Boolean));
const known = ['light-logging', 'admission', 'backlog'];
for (const v of variants) if (!known.includes(v)) throw new Error(`unknown variant ${v} (one of ${known.join(', ')})`);

// ------------------------------------------------------------------ light-logging

/** Same lines as the app's pino-http setup: method, url, status, responseTime; 5xx error, 4xx info, else debug. */
export function lightRequestLogger(logger: Logger): RequestHandler {
  const ignored = new Set(['/healthz', '/metrics', '/readyz']);
  return (req, res, next) => {
    (req as unknown as { log: Logger }).log = logger;
    if (!ignored.has(req.url)) {
      const start = performance.now();
      res.once('finish', () => {
        const status = res.statusCode;
        const level = status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
        if (!logger.isLevelEnabled(level)) return;
        logger[level](
          { req: { method: req.method, url: req.originalUrl }, res: { statusCode: status }, responseTime: Math.round(performance.now() - start) },
          status >= 500 ? 'request errored' : 'request completed',
        );
      });
    }
    next();
  };
}

function replacePinoHttp(app: Express, logger: Logger): void {
  const stack = (app.router as unknown as { stack: { handle: unknown }[] }).stack;
  const layer = stack.find((l) => typeof l.handle === 'function' && 'logger' in (l.handle as object));
  // Without pino-http (the proposed patch applied), the app already logs this way.
  if (layer) layer.handle = lightRequestLogger(logger);
}

// ------------------------------------------------------------------ admission

function cartOf(body: unknown): { sku: string; quantity: number }[] | undefined {
  const items = (body as { items?: unknown } | null)?.items;
  if (!Array.isArray(items) || items.length === 0) return undefined;
  const lines = items.filter((i): i is { sku: string; quantity: number } => typeof i?.sku === 'string' && Number.isInteger(i?.quantity) && i.quantity > 0);
  return lines.length === items.length ? lines : undefined;
}

/**
 * Wraps ReservationService.create with the service's own per-SKU admission gate, for measuring a
 * build of src/ that predates it (see the header). With the gate already in src/ the benchmark
 * skips this variant (experiments/applied.ts).
 */
function installAdmission(): void {
  const original = ReservationService.prototype.create;
  const gate = new AdmissionGate();

  ReservationService.prototype.create = async function create(this: ReservationService, body: unknown) {
    const cart = cartOf(body);
    if (!cart) return original.call(this, body);
    const redis = (this as unknown as { redis: StockRedis }).redis;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const counters = await Promise.all(cart.map((l) => redis.hmget(keys.stock(l.sku), 'total', 'reserved')));
      const available = counters.map(([total, reserved]) => Number(total ?? 0) - Number(reserved ?? 0));
      // Unknown SKU, not loaded, or not enough even before counting in-flight holds: the
      // service's own path answers (404 / 503 / 409) without starting a workflow.
      if (counters.some(([total], i) => total === null || available[i]! < cart[i]!.quantity)) return original.call(this, body);
      const blocked = gate.blocked(cart, available);
      if (!blocked || Date.now() > deadline) break;
      await gate.wait(blocked, 1_000);
    }
    const leave = gate.enter(cart);
    let held = false;
    try {
      const answer = await original.call(this, body);
      held = true;
      return answer;
    } finally {
      leave(held);
    }
  };
}

// ------------------------------------------------------------------ the process

const original = appModule.createApp;
Object.defineProperty(appModule, 'createApp', {
  value: (deps: appModule.AppDeps): Express => {
    const app = original(deps);
    if (variants.has('light-logging')) replacePinoHttp(app, deps.logger);
    if (variants.has('backlog')) {
      const listen = app.listen.bind(app) as (...args: unknown[]) => ReturnType<Express['listen']>;
      (app as unknown as { listen: (...args: unknown[]) => unknown }).listen = (port: unknown, host: unknown, cb: unknown) => listen(port, host, 4096, cb);
    }
    return app;
  },
});
if (variants.has('admission')) installAdmission();

const config = loadConfig();
const logger = createLogger(config.logLevel, 'stockhold-api');
startApi(config, logger)
  .then((api) => {
    logger.info({ url: api.url, variants: [...variants] }, 'API (benchmark variant) listening');
    onShutdownSignal(() => api.close(), logger);
  })
  .catch((err: unknown) => {
    logger.error({ err }, 'API failed to start');
    process.exit(1);
  });
