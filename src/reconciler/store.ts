/**
 * The ledger as the rebuild and the reconciler read it: consistent snapshots of SKUs, holds of
 * HELD reservations, what customers bought, movements after a mark, stale HELD reservations.
 * Reads only: every write to PostgreSQL is the stock module's (src/stock/ledger/).
 */
import type { Pool, PoolClient } from 'pg';
import type { ReservationStatus, SkuRow } from '../domain/types';
import { transaction } from '../stock/database';
import { MOVEMENT_COLUMNS, MOVEMENT_FROM, movementOf, type LedgerMovement, type SkuSnapshot } from '../stock/ledger';

type Db = Pool | PoolClient;

/** A line of a HELD reservation. */
export interface HeldLine {
  reservationId: string;
  quantity: number;
  customerId: string | null;
  updatedAt: Date;
  /** Where PostgreSQL records its units, `loc=units,…` in the order taken. */
  allocation: string;
}

export class ReconcilerStore {
  constructor(readonly db: Pool) {}

  /**
   * A consistent snapshot of these SKUs: each one's total, name, settings and holds of HELD
   * reservations (with their customers), what each customer bought of a limited SKU, and its
   * mark, the id of its last movement. The rows are share-locked, so the snapshot waits for
   * movements in flight; since a movement's id is taken after its SKU's row lock, every movement
   * committed later has a larger id than the mark.
   */
  async snapshot(skus: readonly string[]): Promise<SkuSnapshot[]> {
    return transaction(this.db, async (c) => {
      const rows = await c.query<{
        sku: string;
        name: string;
        total: string;
        low_stock_threshold: number | null;
        max_per_customer: number | null;
      }>(
        'SELECT sku, name, total, low_stock_threshold, max_per_customer FROM skus WHERE sku = ANY($1::text[]) ORDER BY sku FOR SHARE',
        [skus],
      );
      const marks = await c.query<{ sku: string; mark: string }>(
        'SELECT sku, max(id)::text AS mark FROM stock_movements WHERE sku = ANY($1::text[]) GROUP BY sku',
        [skus],
      );
      const held = await this.heldLines(skus, c);
      const bought = await this.bought(
        rows.rows.filter((r) => r.max_per_customer !== null).map((r) => r.sku),
        c,
      );
      const levels = await c.query<{ sku: string; levels: string }>(
        `SELECT v.sku, string_agg(v.location_id || '=' || v.total, ',' ORDER BY l.position) AS levels
           FROM stock_levels v JOIN locations l USING (location_id)
          WHERE v.sku = ANY($1::text[]) GROUP BY v.sku HAVING bool_or(v.location_id <> 'default')`,
        [skus],
      );
      const levelsOf = new Map(levels.rows.map((r) => [r.sku, r.levels]));
      const markOf = new Map(marks.rows.map((r) => [r.sku, r.mark]));
      return rows.rows.map((r) => ({
        sku: r.sku,
        name: r.name,
        total: Number(r.total),
        lowStockThreshold: r.low_stock_threshold,
        maxPerCustomer: r.max_per_customer,
        mark: markOf.get(r.sku) ?? '0',
        holds: (held.get(r.sku) ?? []).map((h) => [h.reservationId, h.quantity, h.customerId, h.allocation] as const),
        levels: levelsOf.get(r.sku) ?? '',
        bought: [...(bought.get(r.sku) ?? new Map<string, number>())],
      }));
    });
  }

  /** Each level's total of these SKUs, by SKU: location -> units (contract v3's stock per location). */
  async levels(skus: readonly string[], db: Db = this.db): Promise<Map<string, Map<string, number>>> {
    const bySku = new Map<string, Map<string, number>>();
    if (skus.length === 0) return bySku;
    const rows = await db.query<{ sku: string; location_id: string; total: string }>(
      'SELECT sku, location_id, total FROM stock_levels WHERE sku = ANY($1::text[])',
      [skus],
    );
    for (const r of rows.rows) {
      const of = bySku.get(r.sku) ?? new Map<string, number>();
      of.set(r.location_id, Number(r.total));
      bySku.set(r.sku, of);
    }
    return bySku;
  }

  /** What each customer bought (sales minus returns) of these SKUs, by SKU; customers with none left out. */
  async bought(skus: readonly string[], db: Db = this.db): Promise<Map<string, Map<string, number>>> {
    const bySku = new Map<string, Map<string, number>>();
    if (skus.length === 0) return bySku;
    const rows = await db.query<{ sku: string; customer_id: string; bought: string }>(
      `SELECT m.sku, r.customer_id, -sum(m.delta) AS bought FROM stock_movements m JOIN reservations r ON r.id = m.reservation_id
        WHERE m.sku = ANY($1::text[]) AND m.kind IN ('sale', 'return') AND r.customer_id IS NOT NULL
        GROUP BY m.sku, r.customer_id HAVING sum(m.delta) <> 0`,
      [skus],
    );
    for (const r of rows.rows) {
      const of = bySku.get(r.sku) ?? new Map<string, number>();
      of.set(r.customer_id, Number(r.bought));
      bySku.set(r.sku, of);
    }
    return bySku;
  }

  /** The lines of HELD reservations on these SKUs, with their customer and when their reservation last changed. */
  async heldLines(skus: readonly string[], db: Db = this.db): Promise<Map<string, HeldLine[]>> {
    const rows = await db.query<{
      sku: string;
      reservation_id: string;
      quantity: number;
      customer_id: string | null;
      updated_at: Date;
      allocation: string | null;
    }>(
      `SELECT l.sku, l.reservation_id, l.quantity, r.customer_id, r.updated_at,
              (SELECT string_agg(a.location_id || '=' || a.quantity, ',' ORDER BY a.position) FROM reservation_allocations a
                WHERE a.reservation_id = l.reservation_id AND a.sku = l.sku) AS allocation
         FROM reservation_lines l
         JOIN reservations r ON r.id = l.reservation_id AND r.status = 'HELD'
        WHERE l.sku = ANY($1::text[])`,
      [skus],
    );
    const bySku = new Map<string, HeldLine[]>();
    for (const r of rows.rows) {
      const list = bySku.get(r.sku) ?? [];
      list.push({
        reservationId: r.reservation_id,
        quantity: r.quantity,
        customerId: r.customer_id,
        updatedAt: r.updated_at,
        allocation: r.allocation ?? '',
      });
      bySku.set(r.sku, list);
    }
    return bySku;
  }

  /** Movements of each SKU after its mark (the ones Redis may not have applied yet), oldest first. */
  async movementsAfter(marks: ReadonlyMap<string, string>): Promise<LedgerMovement[]> {
    if (marks.size === 0) return [];
    const rows = await this.db.query<Parameters<typeof movementOf>[0]>(
      `SELECT ${MOVEMENT_COLUMNS} FROM ${MOVEMENT_FROM}
         JOIN unnest($1::text[], $2::bigint[]) AS k (sku, mark) ON m.sku = k.sku AND m.id > k.mark
        ORDER BY m.id`,
      [[...marks.keys()], [...marks.values()]],
    );
    return rows.rows.map(movementOf);
  }

  /** The rows of these SKUs: name, total, settings, and `reserved` (what HELD reservations hold, kept by the writers). */
  async skus(skus: readonly string[]): Promise<Map<string, SkuRow>> {
    const rows = await this.db.query<{
      sku: string;
      name: string;
      total: string;
      reserved: string;
      low_stock_threshold: number | null;
      max_per_customer: number | null;
    }>(
      'SELECT sku, name, total, reserved, low_stock_threshold, max_per_customer FROM skus WHERE sku = ANY($1::text[])',
      [skus],
    );
    return new Map(
      rows.rows.map((r) => [
        r.sku,
        {
          name: r.name,
          total: Number(r.total),
          reserved: Number(r.reserved),
          lowStockThreshold: r.low_stock_threshold,
          maxPerCustomer: r.max_per_customer,
        },
      ]),
    );
  }

  /** The statuses of these reservations (those PostgreSQL knows). */
  async statuses(ids: readonly string[]): Promise<Map<string, ReservationStatus>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.query<{ id: string; status: ReservationStatus }>(
      'SELECT id, status FROM reservations WHERE id = ANY($1::text[])',
      [ids],
    );
    return new Map(rows.rows.map((r) => [r.id, r.status]));
  }

  /** HELD reservations unchanged for `olderThanMs`, after `afterId` in id order, with their SKUs and whether they expired. */
  async staleHeld(
    olderThanMs: number,
    afterId: string,
    limit: number,
  ): Promise<{ reservationId: string; skus: string[]; expired: boolean }[]> {
    const rows = await this.db.query<{ id: string; skus: string[]; expired: boolean }>(
      `SELECT r.id, array_agg(l.sku ORDER BY l.sku) AS skus, r.expires_at < now() AS expired
         FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id
        WHERE r.status = 'HELD' AND r.id > $2 AND r.updated_at < now() - make_interval(secs => $1::double precision / 1000)
        GROUP BY r.id ORDER BY r.id LIMIT $3`,
      [olderThanMs, afterId, limit],
    );
    return rows.rows.map((r) => ({ reservationId: r.id, skus: r.skus, expired: r.expired }));
  }
}
