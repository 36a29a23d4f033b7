/**
 * The deployment's series of /metrics, read from PostgreSQL at each scrape so every API process
 * shows the same (the reconciler and the webhook dispatcher run in a worker): reservations by
 * status reached, the outbox and its lag, webhook deliveries, the reconciler's repairs and alerts,
 * and the stock of the SKUs an admin watches.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeploymentFigures, StockStore } from '../../stock';
import type { WebhookStore } from '../../webhooks/store';

/** The reconciler's counts by kind, from PostgreSQL (it runs in one worker of the deployment). */
export type ReconcilerCounts = () => Promise<{ kind: string; count: number; lastAt: Date }[]>;
/** Webhook delivery outcomes by result and the pending deliveries, from PostgreSQL (the dispatcher runs in a worker). */
export type WebhookCounts = () => Promise<{ results: { result: string; count: number }[]; pending: number }>;
/** Reservations by status reached, the outbox and the watched SKUs' stock, from PostgreSQL. */
export type FigureSource = () => Promise<DeploymentFigures>;

/** The sources of the deployment's figures over the service's own stores (`reconciler: false` leaves its counts out). */
export function deploymentSources(stock: StockStore, webhooks: WebhookStore, options: { reconciler?: boolean } = {}) {
  return {
    ...(options.reconciler === false ? {} : { reconcilerCounts: () => stock.drift.counts() }),
    webhookCounts: () => webhooks.counts(),
    figures: async (): Promise<DeploymentFigures> => {
      const [figures, outboxLagSeconds] = await Promise.all([stock.figures.read(), webhooks.lagSeconds()]);
      return { ...figures, outboxLagSeconds };
    },
  };
}

/** How long a scrape waits for figures from PostgreSQL before leaving them out. */
const COUNTS_TIMEOUT_MS = 1_000;

/**
 * How figures combine when `npm start` runs several API processes and /metrics answers for all
 * of them (src/processes/supervisor.ts): a process's own counters add up ('sum', prom-client's default);
 * figures read from PostgreSQL are the deployment's already, the same in every process ('max':
 * the freshest reading).
 */
const DEPLOYMENT_WIDE = { aggregator: 'max' } as const;

/** The statuses of stockhold_reservations_total, lower case as Prometheus labels go. */
const STATUS_LABELS: Record<string, string> = {
  HELD: 'held',
  COMMITTED: 'committed',
  CANCELLED: 'cancelled',
  EXPIRED: 'expired',
  REJECTED: 'rejected',
};

/** Where the deployment's figures come from (each left out when absent). */
export interface DeploymentSources {
  reconcilerCounts?: ReconcilerCounts;
  webhookCounts?: WebhookCounts;
  figures?: FigureSource;
}

/** Registers the deployment's series on `registry`, each read once per scrape. */
export function registerDeploymentMetrics(registry: Registry, sources: DeploymentSources): void {
  if (sources.reconcilerCounts) registerReconcilerMetrics(registry, sharedRead(sources.reconcilerCounts));
  if (sources.webhookCounts) registerWebhookMetrics(registry, sharedRead(sources.webhookCounts));
  if (sources.figures) registerFigureMetrics(registry, sharedRead(sources.figures));
}

/**
 * One read per scrape, shared by the metrics built on it (a scrape collects them all at once), and never longer than
 * COUNTS_TIMEOUT_MS: undefined when the read failed or was late (those metrics are left out).
 */
function sharedRead<T>(read: () => Promise<T>): () => Promise<T | undefined> {
  let latest: Promise<T> | undefined;
  return () => {
    latest ??= Promise.race([
      read(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), COUNTS_TIMEOUT_MS).unref()),
    ]).finally(() => (latest = undefined)); // the next scrape reads afresh
    return latest.catch(() => undefined);
  };
}

type Labels = Record<string, string>;

/**
 * A metric whose samples are read from PostgreSQL at each scrape: `samples` turns the scrape's
 * read into [labels, value] pairs, which replace the previous ones (a series that is no longer
 * there goes). When the read failed or was late, the metric is left as it was.
 */
function fromPostgres<T>(
  type: 'counter' | 'gauge',
  registry: Registry,
  read: () => Promise<T | undefined>,
  config: { name: string; help: string; labelNames?: readonly string[] },
  samples: (figures: T) => [Labels, number][],
): void {
  const options = { ...config, labelNames: config.labelNames ?? [], registers: [registry], ...DEPLOYMENT_WIDE };
  async function collect(this: Counter | Gauge) {
    const figures = await read();
    if (figures === undefined) return;
    this.reset();
    for (const [labels, value] of samples(figures)) {
      if (this instanceof Gauge) this.set(labels, value);
      else this.inc(labels, value);
    }
  }
  if (type === 'counter') new Counter({ ...options, collect });
  else new Gauge({ ...options, collect });
}

function registerFigureMetrics(registry: Registry, read: () => Promise<DeploymentFigures | undefined>): void {
  fromPostgres(
    'counter',
    registry,
    read,
    {
      name: 'stockhold_reservations_total',
      help: 'Reservations that reached each status, deployment-wide (held, committed, cancelled, expired; rejected: recorded, then given up in a store outage); a repeated request is not a new one. Refused requests: stockhold_reservation_refusals_total',
      labelNames: ['status'],
    },
    (f) => {
      const counts = new Map(Object.values(STATUS_LABELS).map((label) => [label, 0]));
      for (const row of f.reservations)
        if (STATUS_LABELS[row.status]) counts.set(STATUS_LABELS[row.status]!, row.count);
      return [...counts].map(([status, count]) => [{ status }, count]);
    },
  );
  fromPostgres(
    'counter',
    registry,
    read,
    { name: 'stockhold_outbox_events_total', help: 'Events written to the outbox, deployment-wide' },
    (f) => [[{}, f.events]],
  );
  fromPostgres(
    'gauge',
    registry,
    read,
    {
      name: 'stockhold_outbox_lag_seconds',
      help: 'Age of the oldest event a webhook subscription still waits for (0 when every subscription is up to date)',
    },
    (f) => [[{}, f.outboxLagSeconds]],
  );
  fromPostgres(
    'gauge',
    registry,
    read,
    {
      name: 'stockhold_stock_units',
      help: 'Stock of each watched SKU (PUT /v1/metrics/watched-skus/:sku), from the ledger: total, reserved, available',
      labelNames: ['sku', 'figure'],
    },
    (f) =>
      f.watched.flatMap(({ sku, total, reserved }): [Labels, number][] => [
        [{ sku, figure: 'total' }, total],
        [{ sku, figure: 'reserved' }, reserved],
        [{ sku, figure: 'available' }, total - reserved],
      ]),
  );
  fromPostgres(
    'gauge',
    registry,
    read,
    {
      name: 'stockhold_stock_location_units',
      help: 'Contract v3: stock of each watched SKU stocked at a location other than default, per location, from the ledger: total, reserved, available',
      labelNames: ['sku', 'location', 'figure'],
    },
    (f) =>
      f.watchedLevels.flatMap(({ sku, location, total, reserved }): [Labels, number][] => [
        [{ sku, location, figure: 'total' }, total],
        [{ sku, location, figure: 'reserved' }, reserved],
        [{ sku, location, figure: 'available' }, total - reserved],
      ]),
  );
  fromPostgres(
    'gauge',
    registry,
    read,
    {
      name: 'stockhold_stock_low_threshold_units',
      help: 'Low-stock threshold of each watched SKU that has one',
      labelNames: ['sku'],
    },
    (f) =>
      f.watched.flatMap(({ sku, lowStockThreshold }): [Labels, number][] =>
        lowStockThreshold === null ? [] : [[{ sku }, lowStockThreshold]],
      ),
  );
}

function registerWebhookMetrics(
  registry: Registry,
  read: () => Promise<Awaited<ReturnType<WebhookCounts>> | undefined>,
): void {
  fromPostgres(
    'counter',
    registry,
    read,
    {
      name: 'stockhold_webhook_deliveries_total',
      help: 'Webhook delivery attempts by result: delivered, retry (failed, will be tried again), failed (given up after 24 hours)',
      labelNames: ['result'],
    },
    (f) => f.results.map((row) => [{ result: row.result }, row.count]),
  );
  fromPostgres(
    'gauge',
    registry,
    read,
    { name: 'stockhold_webhook_deliveries_pending', help: 'Webhook deliveries not yet delivered nor failed' },
    (f) => [[{}, f.pending]],
  );
}

/** Rows of reconciler_counts that are not repairs. */
const NOT_REPAIRS = new Set(['scan', 'refused_sale']);

function registerReconcilerMetrics(
  registry: Registry,
  read: () => Promise<Awaited<ReturnType<ReconcilerCounts>> | undefined>,
): void {
  fromPostgres(
    'counter',
    registry,
    read,
    {
      name: 'stockhold_reconcile_repairs_total',
      help: 'Repairs the reconciler made, by kind (lost_hold, phantom_hold, orphan, pending_movement, total, reserved, missing_sku, settings, customer_held, customer_bought, ledger_reserved, rolled_back_movement, level_reserved, level_total, channels, bundles, rebuild)',
      labelNames: ['kind'],
    },
    (rows) =>
      rows
        .filter((row) => !NOT_REPAIRS.has(row.kind) && !row.kind.startsWith('unexplained:'))
        .map((row) => [{ kind: row.kind }, row.count]),
  );
  fromPostgres(
    'counter',
    registry,
    read,
    {
      name: 'stockhold_reconcile_unexplained_total',
      help: 'Drift the reconciler could not explain by work in flight (an alert), by kind',
      labelNames: ['kind'],
    },
    (rows) =>
      rows
        .filter((row) => row.kind.startsWith('unexplained:'))
        .map((row) => [{ kind: row.kind.slice('unexplained:'.length) }, row.count]),
  );
  fromPostgres(
    'counter',
    registry,
    read,
    {
      name: 'stockhold_sales_refused_total',
      help: 'Sales PostgreSQL refused for want of stock (possible only after a store lost a hold); each reservation was cancelled',
    },
    (rows) => rows.filter((row) => row.kind === 'refused_sale').map((row) => [{}, row.count]),
  );
  fromPostgres(
    'gauge',
    registry,
    read,
    {
      name: 'stockhold_reconcile_last_scan_timestamp_seconds',
      help: 'When the reconciler last compared every SKU with PostgreSQL (alert when it stops moving)',
    },
    (rows) => rows.filter((row) => row.kind === 'scan').map((row) => [{}, row.lastAt.getTime() / 1000]),
  );
}
