/**
 * The sample Grafana dashboard (docs/grafana/stockhold-dashboard.json) queries only metrics the
 * service has: a renamed or dropped metric fails here, not on someone's wall screen.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createMetrics } from '../../src/api/metrics/registry';

interface Panel {
  title: string;
  targets: { expr: string }[];
}

const dashboard = JSON.parse(
  readFileSync(path.join(__dirname, '../../docs/grafana/stockhold-dashboard.json'), 'utf8'),
) as {
  panels: Panel[];
  templating: { list: { query?: unknown; definition?: string }[] };
};

/** The names of every series the API's /metrics can have, with a histogram's _bucket/_sum/_count. */
async function seriesNames(): Promise<Set<string>> {
  // Every source given (with empty figures): every metric family registered.
  const metrics = createMetrics({
    reconcilerCounts: async () => [],
    webhookCounts: async () => ({ results: [], pending: 0 }),
    figures: async () => ({ reservations: [], events: 0, outboxLagSeconds: 0, watched: [], watchedLevels: [] }),
  });
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
  }
  return names;
}

describe('the sample Grafana dashboard', () => {
  it('queries only stockhold metrics that /metrics has', async () => {
    const known = await seriesNames();
    const queries = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: p.title, expr: t.expr }))),
      ...dashboard.templating.list.flatMap((v) => (v.definition ? [{ where: 'variable', expr: v.definition }] : [])),
    ];
    const used = queries.flatMap(({ where, expr }) =>
      (expr.match(/\bstockhold_[a-z_]+/g) ?? []).map((name) => ({ where, name })),
    );
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter(({ name }) => !known.has(name))).toEqual([]);
  });

  it('shows each story the issue asks for: statuses, refusals by code, webhook deliveries, outbox lag, watched stock', () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const metric of [
      'stockhold_reservations_total',
      'stockhold_reservation_refusals_total',
      'stockhold_webhook_deliveries_total',
      'stockhold_outbox_lag_seconds',
      'stockhold_stock_units',
    ]) {
      expect(exprs).toContain(metric);
    }
  });
});
