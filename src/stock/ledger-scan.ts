/**
 * The ledger as the rebuild and the reconciler read it: SKUs page by page, consistent snapshots,
 * holds of HELD reservations, movements after a mark, stale HELD reservations; and the
 * reconciler's counts. Writes stay in ledger.ts.
 */
import type { Pool, PoolClient } from 'pg';
import type { ReservationStatus } from '../domain/types';
import { transaction } from './database';
import { movementOf, type LedgerMovement, type SkuSnapshot } from './ledger';

type Db = Pool | PoolClient;

export class LedgerScan {
  constructor(readonly db: Pool) {}

  /** The SKU names, in pages of `limit` after `after` (for scans over every SKU). */
  async skuPage(after: string, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ sku: string }>('SELECT sku FROM skus WHERE sku > $1 ORDER BY sku LIMIT $2', [after, limit]);
    return rows.rows.map((r) => r.sku);
  }

  /**
   * A consistent snapshot of these SKUs: each one's total, name and holds of HELD reservations,
   * and its mark, the id of its last movement. The rows are share-locked, so the snapshot waits
   * for movements in flight; since a movement's id is taken after its SKU's row lock, every
   * movement committed later has a larger id than the mark.
   */
  async snapshot(skus: readonly string[]): Promise<SkuSnapshot[]> {
    return transaction(this.db, async (c) => {
      const rows = await c.query<{ sku: string; name: string; total: string }>(
        'SELECT sku, name, total FROM skus WHERE sku = ANY($1::text[]) ORDER BY sku FOR SHARE',
        [skus],
      );
      const marks = await c.query<{ sku: string; mark: string }>(
        'SELECT sku, max(id)::text AS mark FROM stock_movements WHERE sku = ANY($1::text[]) GROUP BY sku',
        [skus],
      );
      const held = await this.heldLines(skus, c);
      const markOf = new Map(marks.rows.map((r) => [r.sku, r.mark]));
      return rows.rows.map((r) => ({
        sku: r.sku,
        name: r.name,
        total: Number(r.total),
        mark: markOf.get(r.sku) ?? '0',
        holds: (held.get(r.sku) ?? []).map((h) => [h.reservationId, h.quantity] as const),
      }));
    });
  }

  /** The lines of HELD reservations on these SKUs, with when their reservation last changed. */
  async heldLines(skus: readonly string[], db: Db = this.db): Promise<Map<string, { reservationId: string; quantity: number; updatedAt: Date }[]>> {
    const rows = await db.query<{ sku: string; reservation_id: string; quantity: number; updated_at: Date }>(
      `SELECT l.sku, l.reservation_id, l.quantity, r.updated_at FROM reservation_lines l
         JOIN reservations r ON r.id = l.reservation_id AND r.status = 'HELD'
        WHERE l.sku = ANY($1::text[])`,
      [skus],
    );
    const bySku = new Map<string, { reservationId: string; quantity: number; updatedAt: Date }[]>();
    for (const r of rows.rows) {
      const list = bySku.get(r.sku) ?? [];
      list.push({ reservationId: r.reservation_id, quantity: r.quantity, updatedAt: r.updated_at });
      bySku.set(r.sku, list);
    }
    return bySku;
  }

  /** Movements of each SKU after its mark (the ones Redis may not have applied yet), oldest first. */
  async movementsAfter(marks: ReadonlyMap<string, string>): Promise<LedgerMovement[]> {
    if (marks.size === 0) return [];
    const rows = await this.db.query<Parameters<typeof movementOf>[0]>(
      `SELECT m.id::text AS id, m.sku, m.kind, m.delta, m.reservation_id, m.at FROM stock_movements m
         JOIN unnest($1::text[], $2::bigint[]) AS k (sku, mark) ON m.sku = k.sku AND m.id > k.mark
        ORDER BY m.id`,
      [[...marks.keys()], [...marks.values()]],
    );
    return rows.rows.map(movementOf);
  }

  /** The totals of these SKUs. */
  async totals(skus: readonly string[]): Promise<Map<string, number>> {
    const rows = await this.db.query<{ sku: string; total: string }>('SELECT sku, total FROM skus WHERE sku = ANY($1::text[])', [skus]);
    return new Map(rows.rows.map((r) => [r.sku, Number(r.total)]));
  }

  /** Those of these SKUs PostgreSQL knows. */
  async existing(skus: readonly string[]): Promise<Set<string>> {
    if (skus.length === 0) return new Set();
    const rows = await this.db.query<{ sku: string }>('SELECT sku FROM skus WHERE sku = ANY($1::text[])', [skus]);
    return new Set(rows.rows.map((r) => r.sku));
  }

  /** The statuses of these reservations (those PostgreSQL knows). */
  async statuses(ids: readonly string[]): Promise<Map<string, ReservationStatus>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.query<{ id: string; status: ReservationStatus }>('SELECT id, status FROM reservations WHERE id = ANY($1::text[])', [ids]);
    return new Map(rows.rows.map((r) => [r.id, r.status]));
  }

  /** HELD reservations unchanged for `olderThanMs`, after `afterId` in id order, with their SKUs and whether they expired. */
  async staleHeld(olderThanMs: number, afterId: string, limit: number): Promise<{ reservationId: string; skus: string[]; expired: boolean }[]> {
    const rows = await this.db.query<{ id: string; skus: string[]; expired: boolean }>(
      `SELECT r.id, array_agg(l.sku ORDER BY l.sku) AS skus, r.expires_at < now() AS expired
         FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id
        WHERE r.status = 'HELD' AND r.id > $2 AND r.updated_at < now() - make_interval(secs => $1::double precision / 1000)
        GROUP BY r.id ORDER BY r.id LIMIT $3`,
      [olderThanMs, afterId, limit],
    );
    return rows.rows.map((r) => ({ reservationId: r.id, skus: r.skus, expired: r.expired }));
  }

  /** Adds to the reconciler's counts (see the reconciler_counts migration). */
  async count(kind: string, n = 1): Promise<void> {
    await this.db.query(
      `INSERT INTO reconciler_counts (kind, count, last_at) VALUES ($1, $2, now())
       ON CONFLICT (kind) DO UPDATE SET count = reconciler_counts.count + $2, last_at = now()`,
      [kind, n],
    );
  }

  /** The reconciler's counts by kind. */
  async counts(): Promise<{ kind: string; count: number; lastAt: Date }[]> {
    const rows = await this.db.query<{ kind: string; count: string; last_at: Date }>('SELECT kind, count, last_at FROM reconciler_counts');
    return rows.rows.map((r) => ({ kind: r.kind, count: Number(r.count), lastAt: r.last_at }));
  }
}
