/**
 * The `skus` rows: a SKU's total, `reserved` (what its HELD reservations hold, kept by the
 * writers under the row lock) and settings. Every writer of a SKU takes its row lock first
 * (lockSkus, in one order), then writes; methods taking a PoolClient run in the caller's transaction.
 */
import type { Pool, PoolClient } from 'pg';
import { transaction } from '../database';
import { bundleHasNoStock, skuNotFound } from '../../domain/errors';
import type { SkuRow } from '../../domain/types';

export const SKU_COLUMNS = 'name, total, reserved, low_stock_threshold, max_per_customer';
export type SkuColumns = {
  name: string;
  total: string;
  reserved: string;
  low_stock_threshold: number | null;
  max_per_customer: number | null;
};
export function skuRowOf(r: SkuColumns): SkuRow {
  return {
    name: r.name,
    total: Number(r.total),
    reserved: Number(r.reserved),
    lowStockThreshold: r.low_stock_threshold,
    maxPerCustomer: r.max_per_customer,
  };
}

export class SkuLedger {
  constructor(readonly db: Pool) {}

  /** Locks a SKU's row for the transaction and returns it; SKU_NOT_FOUND when there is none. */
  async lockSku(c: PoolClient, sku: string): Promise<SkuRow> {
    return (await this.lockSkus(c, [sku])).get(sku)!;
  }

  /**
   * Locks these SKUs' rows for the transaction, in one order shared by every writer (byte order of
   * the SKU), so that writers of several SKUs never deadlock; SKU_NOT_FOUND when one is missing.
   * Every transaction that writes events takes its SKUs' locks before them (see outbox.ts).
   */
  async lockSkus(c: PoolClient, skus: readonly string[]): Promise<Map<string, SkuRow>> {
    const wanted = [...new Set(skus)];
    const rows = await c.query<SkuColumns & { sku: string }>(
      `SELECT sku, ${SKU_COLUMNS} FROM skus WHERE sku = ANY($1::text[]) ORDER BY sku COLLATE "C" FOR NO KEY UPDATE`,
      [wanted],
    );
    const locked = new Map(rows.rows.map((r) => [r.sku, skuRowOf(r)]));
    const missing = wanted.find((sku) => !locked.has(sku));
    if (missing !== undefined) {
      // A bundle (contract v3) has no row here, and no stock of its own to write.
      const bundle = await c.query('SELECT 1 FROM bundles WHERE sku = $1', [missing]);
      throw bundle.rowCount ? bundleHasNoStock(missing) : skuNotFound(missing);
    }
    return locked;
  }

  /**
   * Changes a SKU's name and settings (the fields given; null unsets a setting) and returns its
   * row, locked for the transaction; SKU_NOT_FOUND when there is none.
   */
  async updateSku(
    c: PoolClient,
    sku: string,
    patch: { name?: string; lowStockThreshold?: number | null; maxPerCustomer?: number | null },
  ): Promise<SkuRow> {
    const row = (
      await c.query<SkuColumns>(
        `UPDATE skus SET name = CASE WHEN $2 THEN $3 ELSE name END,
                         low_stock_threshold = CASE WHEN $4 THEN $5::integer ELSE low_stock_threshold END,
                         max_per_customer = CASE WHEN $6 THEN $7::integer ELSE max_per_customer END,
                         updated_at = now()
          WHERE sku = $1 RETURNING ${SKU_COLUMNS}`,
        [
          sku,
          patch.name !== undefined,
          patch.name ?? null,
          patch.lowStockThreshold !== undefined,
          patch.lowStockThreshold ?? null,
          patch.maxPerCustomer !== undefined,
          patch.maxPerCustomer ?? null,
        ],
      )
    ).rows[0];
    if (!row) throw skuNotFound(sku);
    return skuRowOf(row);
  }

  /**
   * What each customer bought of a SKU (its sales minus returns, customers with none left out), and
   * the SKU's last movement id: call it with the SKU's row locked, so no sale or return commits
   * in between and every later one has a larger id (see `move`).
   */
  async bought(c: PoolClient, sku: string): Promise<{ mark: string; bought: [string, number][] }> {
    const [mark, rows] = await Promise.all([
      c.query<{ mark: string | null }>('SELECT max(id)::text AS mark FROM stock_movements WHERE sku = $1', [sku]),
      c.query<{ customer_id: string; bought: string }>(
        `SELECT r.customer_id, -sum(m.delta) AS bought FROM stock_movements m JOIN reservations r ON r.id = m.reservation_id
          WHERE m.sku = $1 AND m.kind IN ('sale', 'return') AND r.customer_id IS NOT NULL
          GROUP BY r.customer_id HAVING sum(m.delta) <> 0`,
        [sku],
      ),
    ]);
    return { mark: mark.rows[0]?.mark ?? '0', bought: rows.rows.map((r) => [r.customer_id, Number(r.bought)]) };
  }

  /** Whether PostgreSQL knows this SKU. */
  async skuExists(sku: string): Promise<boolean> {
    return ((await this.db.query('SELECT 1 FROM skus WHERE sku = $1', [sku])).rowCount ?? 0) > 0;
  }

  /**
   * One page of the SKUs PostgreSQL knows, in SKU order, after `after` (keyset pagination: a page
   * costs the same however far into the list it is). `next` is the cursor of the following page,
   * or null on the last one. For the ops page's list and the reconciler's and rebuild's scans.
   */
  async page(after: string | undefined, limit: number): Promise<{ skus: string[]; next: string | null }> {
    const { rows } = await this.db.query<{ sku: string }>(
      'SELECT sku FROM skus WHERE ($1::text IS NULL OR sku > $1) ORDER BY sku LIMIT $2',
      [after ?? null, limit + 1],
    );
    const skus = rows.slice(0, limit).map((r) => r.sku);
    return { skus, next: rows.length > limit ? skus.at(-1)! : null };
  }

  /** Those of these SKUs PostgreSQL knows. */
  async existing(skus: readonly string[]): Promise<Set<string>> {
    if (skus.length === 0) return new Set();
    const rows = await this.db.query<{ sku: string }>('SELECT sku FROM skus WHERE sku = ANY($1::text[])', [skus]);
    return new Set(rows.rows.map((r) => r.sku));
  }

  /**
   * Sets `skus.reserved` of a SKU (and of each of its levels) to what its HELD reservations hold, under the SKU's row lock (which
   * every writer of `reserved` takes first, so nothing moves it meanwhile): {before, after} when it
   * changed, undefined when it was right.
   */
  async recomputeReserved(sku: string): Promise<{ before: number; after: number } | undefined> {
    return transaction(this.db, async (c) => {
      const row = await c.query<{ reserved: string }>('SELECT reserved FROM skus WHERE sku = $1 FOR NO KEY UPDATE', [
        sku,
      ]);
      if (row.rowCount === 0) return undefined;
      const held = await c.query<{ n: string }>(
        `SELECT COALESCE(sum(l.quantity), 0) AS n FROM reservation_lines l
           JOIN reservations r ON r.id = l.reservation_id AND r.status = 'HELD' WHERE l.sku = $1`,
        [sku],
      );
      const before = Number(row.rows[0]!.reserved);
      const after = Number(held.rows[0]!.n);
      if (before === after) return undefined;
      await c.query('UPDATE skus SET reserved = $2 WHERE sku = $1', [sku, after]);
      // Each level's `reserved` too: what the HELD reservations' allocations hold there.
      await c.query(
        `UPDATE stock_levels v SET reserved = COALESCE((
           SELECT sum(a.quantity) FROM reservation_allocations a
             JOIN reservations r ON r.id = a.reservation_id AND r.status = 'HELD'
            WHERE a.sku = v.sku AND a.location_id = v.location_id), 0)
          WHERE v.sku = $1`,
        [sku],
      );
      return { before, after };
    });
  }
}
