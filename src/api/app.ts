/**
 * The Express app of the contract (docs/API.md): the service endpoints (health, readiness, metrics,
 * the OpenAPI document and its page), each resource's routes (src/api/<resource>/), and the one
 * error handler that answers every refusal in the contract's shape.
 */
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { Config } from '../config';
import { StockholdError } from '../domain/errors';
import type { Logger } from '../logger';
import type { StockStore } from '../stock';
import type { WebhookStore } from '../webhooks/store';
import { createAuth, type Access } from './auth';
import { toContractError } from './errors';
import { deadlines, jsonBody, requestLog, withTimeout } from './http';
import type { Metrics } from './metrics/registry';
import { stateOf, type ReadinessCheck } from './readiness';
import { metricsRoutes } from './metrics/routes';
import { buildOpenApiDocument } from './openapi/document';
import { docsRoutes } from './openapi/docs';
import { apiDescription, serviceVersion } from './openapi/operations';
import { bundleRoutes } from './bundles/routes';
import { channelRoutes } from './channels/routes';
import { locationRoutes } from './locations/routes';
import { opsRoutes } from './ops/routes';
import { reservationRoutes } from './reservations/routes';
import type { ReservationService } from './reservations/service';
import { stockRoutes } from './stock/routes';
import { webhookRoutes } from './webhooks/routes';

export type Check = 'redis' | 'postgres' | 'temporal';

export interface AppDeps {
  config: Pick<Config, 'adminToken' | 'apiToken' | 'maxTtlSeconds'> &
    Partial<Pick<Config, 'temporalUiUrl' | 'temporalNamespace' | 'metricsWatchedSkusMax'>>;
  stock: StockStore;
  reservations: ReservationService;
  webhooks: WebhookStore;
  metrics: Metrics;
  logger: Logger;
  /** Each backing store's readiness, for /readyz (readiness.ts). */
  checks: Record<Check, ReadinessCheck>;
}

/** The contract's HTTP API (docs/API.md): service endpoints, the stock, reservation and webhook routes, one error handler. */
export function createApp(deps: AppDeps): Express {
  const { metrics, logger } = deps;
  const requireAccess = createAuth(deps.config);
  // The body is read only after the token is checked: an unauthenticated or unauthorised caller
  // gets 401/403 whatever it sends, and never makes the server parse up to 64 KiB of JSON.
  const authenticated = (role: Access): RequestHandler => {
    const check = requireAccess(role);
    return (req, res, next) => check(req, res, (err?: unknown) => (err ? next(err) : jsonBody(req, res, next)));
  };
  const role = { client: authenticated('client'), admin: authenticated('admin') };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(metrics.middleware);
  app.use(requestLog(logger));
  app.use(deadlines());

  // ---------------------------------------------------------------- service endpoints (no token)
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const entries = await Promise.all(
      Object.entries(deps.checks).map(async ([name, check]) => {
        try {
          // Within the read deadline (2 s), so /readyz always answers with its checks.
          return [name, stateOf(await withTimeout(check(), 1_500))] as const;
        } catch {
          return [name, 'down'] as const;
        }
      }),
    );
    const ok = entries.every(([, state]) => state === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'down', checks: Object.fromEntries(entries) });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.text());
  });
  // The contract as OpenAPI 3.1, built from the routes' own schemas (src/api/openapi/operations.ts).
  const openapi = buildOpenApiDocument(apiDescription(deps.config), { version: serviceVersion() });
  const openapiJson = JSON.stringify(openapi);
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(openapiJson);
  });
  // The same as a page to read and try (Swagger UI, from node_modules; public/docs/).
  app.use(docsRoutes());

  app.use(stockRoutes(deps.stock, role));
  app.use(reservationRoutes(deps.reservations, deps.config.maxTtlSeconds, role.client, metrics));
  app.use(locationRoutes(deps.stock, role.admin));
  app.use(channelRoutes(deps.stock, role));
  app.use(bundleRoutes(deps.stock, role.admin));
  app.use(webhookRoutes(deps.webhooks, role.admin));
  app.use(metricsRoutes(deps.stock.figures, role.admin, deps.config.metricsWatchedSkusMax ?? 50));
  app.use(
    opsRoutes(deps.stock, role.admin, {
      temporalUiUrl: deps.config.temporalUiUrl,
      temporalNamespace: deps.config.temporalNamespace ?? 'default',
    }),
  );

  app.use((req, _res, next) => {
    next(new StockholdError('NOT_FOUND', `no route for ${req.method} ${req.path}`));
  });

  const onError: ErrorRequestHandler = (err, req, res, _next) => {
    if (res.headersSent) return; // answered already (its deadline passed): nothing more to say
    const type = (err as { type?: string } | null)?.type;
    let error: StockholdError | undefined;
    if (type === 'entity.too.large') error = new StockholdError('PAYLOAD_TOO_LARGE', 'request body is over 64 KiB');
    else if (type === 'entity.parse.failed')
      error = new StockholdError('INVALID_REQUEST', 'request body is not valid JSON', { field: '(body)' });
    else if (type && /^(encoding|charset)\./.test(type))
      error = new StockholdError('UNSUPPORTED_MEDIA_TYPE', String((err as Error).message));
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
