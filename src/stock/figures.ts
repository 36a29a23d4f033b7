/**
 * The deployment's figures for /metrics, read from PostgreSQL so that every API process reports
 * the same values whatever it served itself: reservations by the status they reached (counted by
 * a trigger, migrations/1765100000000_metrics.sql), the outbox's size, and the stock of the SKUs
 * watched for /metrics (bounded by METRICS_WATCHED_SKUS_MAX). The outbox's lag is the webhooks'
 * (src/webhooks/store.ts).
 */
import type { Pool } from 'pg';
import { StockholdError } from '../domain/errors';
import { transaction } from './database';

/** What the stock module reports to /metrics. */
export interface StockFigures {
  /** How many reservations reached each status (HELD, COMMITTED, CANCELLED, EXPIRED, REJECTED). */
  reservations: { status: string; count: number }[];
  /** Events written to the outbox so far (its highest sequence number). */
  events: number;
  /** Stock of each watched SKU, from the ledger. */
  watched: { sku: string; total: number; reserved: number; lowStockThreshold: number | null }[];
  /** Contract v3: each level of the watched SKUs stocked elsewhere than `default` alone. */
  watchedLevels: { sku: string; location: string; total: number; reserved: number }[];
}

/** Everything /metrics reads from PostgreSQL: the stock's figures and the age of the oldest event a webhook subscription still waits for. */
export interface DeploymentFigures extends StockFigures {
  outboxLagSeconds: number;
}

export class Figures {
  constructor(private readonly db: Pool) {}

  async read(): Promise<StockFigures> {
    const [reservations, events, watched, levels] = await Promise.all([
      this.db.query<{ status: string; count: string }>(
        'SELECT status, sum(count)::bigint AS count FROM reservation_status_counts GROUP BY status',
      ),
      this.db.query<{ events: string }>('SELECT coalesce(max(seq), 0) AS events FROM events'),
      this.db.query<{ sku: string; total: string; reserved: string; low_stock_threshold: number | null }>(
        'SELECT s.sku, s.total, s.reserved, s.low_stock_threshold FROM metrics_watched_skus w JOIN skus s USING (sku) ORDER BY s.sku',
      ),
      this.db.query<{ sku: string; location_id: string; total: string; reserved: string }>(
        `SELECT v.sku, v.location_id, v.total, v.reserved FROM metrics_watched_skus w JOIN stock_levels v USING (sku)
          WHERE EXISTS (SELECT 1 FROM stock_levels o WHERE o.sku = v.sku AND o.location_id <> 'default')
          ORDER BY v.sku, v.location_id`,
      ),
    ]);
    return {
      reservations: reservations.rows.map((r) => ({ status: r.status, count: Number(r.count) })),
      events: Number(events.rows[0]?.events ?? 0),
      watched: watched.rows.map((r) => ({
        sku: r.sku,
        total: Number(r.total),
        reserved: Number(r.reserved),
        lowStockThreshold: r.low_stock_threshold,
      })),
      watchedLevels: levels.rows.map((r) => ({
        sku: r.sku,
        location: r.location_id,
        total: Number(r.total),
        reserved: Number(r.reserved),
      })),
    };
  }

  /** The SKUs watched for /metrics, in SKU order. */
  async watched(): Promise<string[]> {
    return (await this.db.query<{ sku: string }>('SELECT sku FROM metrics_watched_skus ORDER BY sku')).rows.map(
      (r) => r.sku,
    );
  }

  /**
   * Watches a SKU (a repeat changes nothing). An unknown SKU is SKU_NOT_FOUND; a new one beyond
   * `max` watched is WATCH_LIMIT_REACHED. One at a time (a transaction-scoped advisory lock), so
   * two admins racing cannot go past the bound together.
   */
  async watch(sku: string, max: number): Promise<string[]> {
    await transaction(this.db, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(hashtext('stockhold:metrics_watched_skus'))");
      const known = await c.query('SELECT 1 FROM skus WHERE sku = $1', [sku]);
      if (!known.rowCount) throw new StockholdError('SKU_NOT_FOUND', `SKU ${sku} not found`, { sku });
      const { rows } = await c.query<{ sku: string }>('SELECT sku FROM metrics_watched_skus');
      if (!rows.some((r) => r.sku === sku)) {
        if (rows.length >= max) {
          throw new StockholdError(
            'WATCH_LIMIT_REACHED',
            `at most ${max} SKUs can be watched (METRICS_WATCHED_SKUS_MAX); unwatch one first`,
            { sku, limit: max },
          );
        }
        await c.query('INSERT INTO metrics_watched_skus (sku) VALUES ($1)', [sku]);
      }
    });
    return this.watched();
  }

  /** Stops watching a SKU (not watched: nothing to do). */
  async unwatch(sku: string): Promise<string[]> {
    await this.db.query('DELETE FROM metrics_watched_skus WHERE sku = $1', [sku]);
    return this.watched();
  }
}
