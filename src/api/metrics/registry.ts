/**
 * The Prometheus registry of /metrics: this process's own series (request latency, reservation
 * outcomes and refusals), and the deployment's, read from PostgreSQL at each scrape (./deployment.ts).
 */
import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { shareMetrics } from '../../processes/child';
import { registerDeploymentMetrics, type DeploymentSources } from './deployment';

/**
 * Prometheus metrics of the API: request latency by route and status, reservation outcomes and
 * refusals of this process; and, read from PostgreSQL at each scrape, the deployment's story:
 * reservations by status reached, the outbox and its lag, webhook deliveries, the reconciler, and
 * the stock of the SKUs an admin watches.
 */
export function createMetrics(sources: DeploymentSources = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requestSeconds = new Histogram({
    name: 'stockhold_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  const reservations = new Counter({
    name: 'stockhold_reservation_results_total',
    help: 'Reservation requests by outcome (HELD, REPEAT, or the refusal code)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'stockhold_reservation_refusals_total',
    help: 'Reservation requests refused, by error code (INSUFFICIENT_STOCK, CUSTOMER_LIMIT_EXCEEDED, UNAVAILABLE, ...): the rejected ones',
    labelNames: ['code'] as const,
    registers: [registry],
  });

  registerDeploymentMetrics(registry, sources);

  const middleware: RequestHandler = (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      // The route pattern, not the URL: SKUs and ids must not become label values.
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      requestSeconds.observe(
        { method: req.method, route, status: String(res.statusCode) },
        Number(process.hrtime.bigint() - start) / 1e9,
      );
    });
    next();
  };

  /** Counts one POST /v1/reservations: held (a new one), a repeat of one, or refused with `code`. */
  const reservationAnswered = (outcome: { created: boolean } | { code: string }) => {
    if ('code' in outcome) {
      reservations.inc({ outcome: outcome.code });
      refusals.inc({ code: outcome.code });
    } else reservations.inc({ outcome: outcome.created ? 'HELD' : 'REPEAT' });
  };

  // Under `npm start` with several API processes, /metrics answers for all of them (src/processes/supervisor.ts).
  const machine = shareMetrics(registry);
  /** The text of GET /metrics: the machine's processes combined, or this process's own. */
  const text = async () => (await machine?.()) ?? (await registry.metrics());

  return { registry, middleware, reservationAnswered, text };
}

export type Metrics = ReturnType<typeof createMetrics>;
