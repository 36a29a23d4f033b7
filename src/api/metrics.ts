import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The reconciler's counts by kind, from PostgreSQL (it runs in one worker of the deployment). */
export type ReconcilerCounts = () => Promise<{ kind: string; count: number; lastAt: Date }[]>;

/** How long a scrape waits for the reconciler's counts before leaving them out. */
const COUNTS_TIMEOUT_MS = 1_000;

/**
 * Prometheus metrics of the API: request latency by route and status, reservation outcomes, and
 * the deployment's reconciler: repairs and unexplained drift by kind, time of its last scan.
 */
export function createMetrics(sources: { reconcilerCounts?: ReconcilerCounts; webhookCounts?: WebhookCounts } = {}) {
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
    help: 'Reservation requests by outcome (HELD, or the refusal code)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });

  if (sources.reconcilerCounts) registerReconcilerMetrics(registry, sources.reconcilerCounts);
  if (sources.webhookCounts) registerWebhookMetrics(registry, sources.webhookCounts);

  const middleware: RequestHandler = (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      // The route pattern, not the URL: SKUs and ids must not become label values.
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      requestSeconds.observe({ method: req.method, route, status: String(res.statusCode) }, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };

  return { registry, middleware, reservations };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Webhook delivery outcomes by result and the pending deliveries, from PostgreSQL (the dispatcher runs in a worker). */
export type WebhookCounts = () => Promise<{ results: { result: string; count: number }[]; pending: number }>;

function registerWebhookMetrics(registry: Registry, counts: WebhookCounts): void {
  let latest: ReturnType<WebhookCounts> | undefined;
  // One read per scrape, shared by both metrics, and never longer than COUNTS_TIMEOUT_MS.
  const read = () => {
    latest ??= Promise.race([
      counts(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), COUNTS_TIMEOUT_MS).unref()),
    ]).finally(() => setTimeout(() => (latest = undefined), 100).unref());
    return latest.catch(() => undefined);
  };
  new Counter({
    name: 'stockhold_webhook_deliveries_total',
    help: 'Webhook delivery attempts by result: delivered, retry (failed, will be tried again), failed (given up after 24 hours)',
    labelNames: ['result'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of (await read())?.results ?? []) this.inc({ result: row.result }, row.count);
    },
  });
  new Gauge({
    name: 'stockhold_webhook_deliveries_pending',
    help: 'Webhook deliveries not yet delivered nor failed',
    registers: [registry],
    async collect() {
      const value = await read();
      if (value) this.set(value.pending);
    },
  });
}

/** Rows of reconciler_counts that are not repairs. */
const NOT_REPAIRS = new Set(['scan', 'refused_sale']);

function registerReconcilerMetrics(registry: Registry, counts: ReconcilerCounts): void {
  let latest: Promise<{ kind: string; count: number; lastAt: Date }[]> | undefined;
  // One read per scrape, shared by the three metrics, and never longer than COUNTS_TIMEOUT_MS.
  const read = () => {
    latest ??= Promise.race([
      counts(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), COUNTS_TIMEOUT_MS).unref()),
    ]).finally(() => setTimeout(() => (latest = undefined), 100).unref());
    return latest.catch(() => []);
  };
  new Counter({
    name: 'stockhold_reconcile_repairs_total',
    help: 'Repairs the reconciler made, by kind (lost_hold, phantom_hold, orphan, pending_movement, total, reserved, missing_sku, rebuild)',
    labelNames: ['kind'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await read()) if (!NOT_REPAIRS.has(row.kind) && !row.kind.startsWith('unexplained:')) this.inc({ kind: row.kind }, row.count);
    },
  });
  new Counter({
    name: 'stockhold_reconcile_unexplained_total',
    help: 'Drift the reconciler could not explain by work in flight (an alert), by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await read()) if (row.kind.startsWith('unexplained:')) this.inc({ kind: row.kind.slice('unexplained:'.length) }, row.count);
    },
  });
  new Counter({
    name: 'stockhold_sales_refused_total',
    help: 'Sales PostgreSQL refused for want of stock (possible only after a store lost a hold); each reservation was cancelled',
    registers: [registry],
    async collect() {
      this.reset();
      const refused = (await read()).find((row) => row.kind === 'refused_sale');
      if (refused) this.inc(refused.count);
    },
  });
  new Gauge({
    name: 'stockhold_reconcile_last_scan_timestamp_seconds',
    help: 'When the reconciler last compared every SKU with PostgreSQL (alert when it stops moving)',
    registers: [registry],
    async collect() {
      const scan = (await read()).find((row) => row.kind === 'scan');
      if (scan) this.set(scan.lastAt.getTime() / 1000);
    },
  });
}
