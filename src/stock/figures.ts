import type { Pool } from 'pg';
import { StockholdError } from '../domain/errors';
import { transaction } from './database';

/**
 * The deployment's figures for /metrics, read from PostgreSQL so that every API process reports
 * the same values whatever it served itself: reservations by the status they reached (counted by
 * a trigger, migrations/1765100000000_metrics.sql), the outbox, and the stock of watched SKUs.
 */
export interface DeploymentFigures {
  /** How many reservations reached each status (HELD, COMMITTED, CANCELLED, EXPIRED, REJECTED). */
  reservations: { status: string; count: number }[];
  /** Events written to the outbox so far (its highest sequence number). */
  events: number;
  /** Age of the oldest event a webhook subscription still waits for (0 when none waits). */
  outboxLagSeconds: number;
  /** Stock of each watched SKU, from the ledger. */
  watched: { sku: string; total: number; reserved: number; lowStockThreshold: number | null }[];
}

export async function deploymentFigures(db: Pool): Promise<DeploymentFigures> {
  const [reservations, outbox, watched] = await Promise.all([
    db.query<{ status: string; count: string }>('SELECT status, sum(count)::bigint AS count FROM reservation_status_counts GROUP BY status'),
    // The lag: the oldest delivery still pending, by its event's time. One index probe per active
    // subscription (the partial index on pending deliveries), however long the queues are.
    db.query<{ events: string; lag: number | null }>(
      `SELECT (SELECT coalesce(max(seq), 0) FROM events) AS events,
              (SELECT extract(epoch FROM now() - min(e.created_at))::float8
                 FROM webhook_subscriptions s
                 -- a deleted subscription's deliveries stopped (failed) with it
                 CROSS JOIN LATERAL (SELECT event_id FROM webhook_deliveries d
                                      WHERE d.subscription_id = s.id AND d.status = 'pending'
                                      ORDER BY d.event_seq LIMIT 1) head
                 JOIN events e ON e.id = head.event_id
                WHERE s.deleted_at IS NULL) AS lag`,
    ),
    db.query<{ sku: string; total: string; reserved: string; low_stock_threshold: number | null }>(
      'SELECT s.sku, s.total, s.reserved, s.low_stock_threshold FROM metrics_watched_skus w JOIN skus s USING (sku) ORDER BY s.sku',
    ),
  ]);
  const seq = outbox.rows[0];
  return {
    reservations: reservations.rows.map((r) => ({ status: r.status, count: Number(r.count) })),
    events: Number(seq?.events ?? 0),
    outboxLagSeconds: Math.max(0, seq?.lag ?? 0),
    watched: watched.rows.map((r) => ({ sku: r.sku, total: Number(r.total), reserved: Number(r.reserved), lowStockThreshold: r.low_stock_threshold })),
  };
}

/** The SKUs watched for /metrics, in SKU order. */
export async function watchedSkus(db: Pool): Promise<string[]> {
  return (await db.query<{ sku: string }>('SELECT sku FROM metrics_watched_skus ORDER BY sku')).rows.map((r) => r.sku);
}

/**
 * Watches a SKU (a repeat changes nothing). An unknown SKU is SKU_NOT_FOUND; a new one beyond
 * `max` watched is WATCH_LIMIT_REACHED. One at a time (a transaction-scoped advisory lock), so
 * two admins racing cannot go past the bound together.
 */
export async function watchSku(db: Pool, sku: string, max: number): Promise<string[]> {
  await transaction(db, async (c) => {
    await c.query("SELECT pg_advisory_xact_lock(hashtext('stockhold:metrics_watched_skus'))");
    const known = await c.query('SELECT 1 FROM skus WHERE sku = $1', [sku]);
    if (!known.rowCount) throw new StockholdError('SKU_NOT_FOUND', `SKU ${sku} not found`, { sku });
    const { rows } = await c.query<{ sku: string }>('SELECT sku FROM metrics_watched_skus');
    if (!rows.some((r) => r.sku === sku)) {
      if (rows.length >= max) {
        throw new StockholdError('WATCH_LIMIT_REACHED', `at most ${max} SKUs can be watched (METRICS_WATCHED_SKUS_MAX); unwatch one first`, { sku, limit: max });
      }
      await c.query('INSERT INTO metrics_watched_skus (sku) VALUES ($1)', [sku]);
    }
  });
  return watchedSkus(db);
}

/** Stops watching a SKU (not watched: nothing to do). */
export async function unwatchSku(db: Pool, sku: string): Promise<string[]> {
  await db.query('DELETE FROM metrics_watched_skus WHERE sku = $1', [sku]);
  return watchedSkus(db);
}
