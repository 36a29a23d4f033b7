/**
 * The PostgreSQL ledger: every SQL statement of the stock module. `skus.total` changes only with
 * a `stock_movements` row in the same transaction; reservations and their lines record holds,
 * sales and returns. Methods taking a PoolClient run inside the caller's transaction.
 */
import type { Pool, PoolClient } from 'pg';
import { transaction } from './database';
import {
  insufficientStock,
  quantityExceedsHold,
  reservationNotFound,
  reservationNotHeld,
  skuNotFound,
  StockholdError,
} from '../domain/errors';
import { MAX_STOCK } from '../domain/limits';
import type { CartLine, Movement, MovementKind, ReleaseStatus, ReservationLine, ReservationStatus, ReservationView, SkuSettings } from '../domain/types';
import { workflowIdOf } from '../domain/types';
import type { SkuFigures } from './scripts';

type Db = Pool | PoolClient;

/** One SKU as a rebuild loads it, from one consistent PostgreSQL snapshot. */
export interface SkuSnapshot extends SkuFigures {
  sku: string;
}

/** A ledger row as the reconciler and a repeated request re-apply it. */
export interface LedgerMovement {
  id: string;
  sku: string;
  kind: MovementKind;
  delta: number;
  /** The reservation of a `sale` or `return`. */
  reservationId: string | null;
  /** That reservation's customer, if it names one (whose bought count the movement changes). */
  customerId: string | null;
  at: Date;
}

/** The columns of a LedgerMovement (`m`, joined with its reservation `r`), and the row → movement mapping. */
export const MOVEMENT_COLUMNS = 'm.id::text AS id, m.sku, m.kind, m.delta, m.reservation_id, r.customer_id, m.at';
export const MOVEMENT_FROM = 'stock_movements m LEFT JOIN reservations r ON r.id = m.reservation_id';
export function movementOf(r: {
  id: string;
  sku: string;
  kind: MovementKind;
  delta: string;
  reservation_id: string | null;
  customer_id: string | null;
  at: Date;
}): LedgerMovement {
  return { id: r.id, sku: r.sku, kind: r.kind, delta: Number(r.delta), reservationId: r.reservation_id, customerId: r.customer_id, at: r.at };
}

/** A SKU's row: its name, total and settings. */
export interface SkuRow extends SkuSettings {
  name: string;
  total: number;
}

const SKU_COLUMNS = 'name, total, low_stock_threshold, max_per_customer';
function skuRowOf(r: { name: string; total: string; low_stock_threshold: number | null; max_per_customer: number | null }): SkuRow {
  return { name: r.name, total: Number(r.total), lowStockThreshold: r.low_stock_threshold, maxPerCustomer: r.max_per_customer };
}

/** A sale line: what the line sold and the id of its `sale` movement ('0' when it sold nothing). */
export type SoldLine = ReservationLine & { movementId: string };

export class Ledger {
  constructor(readonly db: Pool) {}

  // ---------------------------------------------------------------- SKUs and movements

  /** Inserts a new SKU and its `initial` movement; SKU_EXISTS when it is there already. */
  async createSku(c: PoolClient, sku: string, name: string, total: number): Promise<{ movementId: string }> {
    const inserted = await c.query('INSERT INTO skus (sku, name, total) VALUES ($1, $2, $3) ON CONFLICT (sku) DO NOTHING', [sku, name, total]);
    if (inserted.rowCount === 0) throw new StockholdError('SKU_EXISTS', `SKU ${sku} already exists`, { sku });
    const movement = await c.query<{ id: string }>(
      `INSERT INTO stock_movements (sku, kind, delta, reason) VALUES ($1, 'initial', $2, 'created') RETURNING id::text AS id`,
      [sku, total],
    );
    return { movementId: movement.rows[0]!.id };
  }

  /** Locks a SKU's row for the transaction and returns it; SKU_NOT_FOUND when there is none. */
  async lockSku(c: PoolClient, sku: string): Promise<SkuRow> {
    const row = (await c.query<Parameters<typeof skuRowOf>[0]>(`SELECT ${SKU_COLUMNS} FROM skus WHERE sku = $1 FOR UPDATE`, [sku])).rows[0];
    if (!row) throw skuNotFound(sku);
    return skuRowOf(row);
  }

  /**
   * Changes a SKU's name and settings (the fields given; null unsets a setting) and returns its
   * row, locked for the transaction; SKU_NOT_FOUND when there is none.
   */
  async updateSku(c: PoolClient, sku: string, patch: { name?: string; lowStockThreshold?: number | null; maxPerCustomer?: number | null }): Promise<SkuRow> {
    const row = (
      await c.query<Parameters<typeof skuRowOf>[0]>(
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

  /**
   * Changes a SKU's total by `delta` with its ledger row; the total after it. The row lock comes
   * before the movement's id, so movement ids of one SKU follow the order of their commits.
   */
  async move(
    c: PoolClient,
    movement: { sku: string; kind: Exclude<MovementKind, 'initial'>; delta: number; reservationId?: string; reason?: string },
  ): Promise<{ movementId: string } & SkuRow> {
    const updated = await c.query<Parameters<typeof skuRowOf>[0]>(
      `UPDATE skus SET total = total + $2, updated_at = now() WHERE sku = $1 AND total + $2 BETWEEN 0 AND $3 RETURNING ${SKU_COLUMNS}`,
      [movement.sku, movement.delta, MAX_STOCK],
    );
    const row = updated.rows[0];
    if (!row) {
      const current = await this.lockSku(c, movement.sku); // SKU_NOT_FOUND when there is none
      if (current.total + movement.delta < 0) throw insufficientStock(movement.sku, -movement.delta, current.total);
      const field = movement.kind === 'adjustment' ? 'delta' : 'quantity';
      throw new StockholdError('INVALID_REQUEST', `${field}: total would exceed 2^31-1`, { field });
    }
    const inserted = await c.query<{ id: string }>(
      'INSERT INTO stock_movements (sku, kind, delta, reservation_id, reason) VALUES ($1, $2, $3, $4, $5) RETURNING id::text AS id',
      [movement.sku, movement.kind, movement.delta, movement.reservationId ?? null, movement.reason ?? null],
    );
    return { movementId: inserted.rows[0]!.id, ...skuRowOf(row) };
  }

  /** A SKU's ledger, newest first; SKU_NOT_FOUND when it has none (every SKU has its `initial` row). */
  async movements(sku: string, limit: number): Promise<Movement[]> {
    const result = await this.db.query<{ id: string; kind: MovementKind; delta: string; reservation_id: string | null; reason: string | null; at: Date }>(
      'SELECT id, kind, delta, reservation_id, reason, at FROM stock_movements WHERE sku = $1 ORDER BY id DESC LIMIT $2',
      [sku, limit],
    );
    if (result.rowCount === 0) throw skuNotFound(sku);
    return result.rows.map((r) => ({
      id: String(r.id),
      kind: r.kind,
      delta: Number(r.delta),
      ...(r.reservation_id ? { reservationId: r.reservation_id } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
      at: r.at.toISOString(),
    }));
  }





  /** The movements with these ids. */
  async movementsById(ids: readonly string[]): Promise<LedgerMovement[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<Parameters<typeof movementOf>[0]>(`SELECT ${MOVEMENT_COLUMNS} FROM ${MOVEMENT_FROM} WHERE m.id = ANY($1::bigint[]) ORDER BY m.id`, [
      ids,
    ]);
    return rows.rows.map(movementOf);
  }






  /** Whether PostgreSQL knows this SKU. */
  async skuExists(sku: string): Promise<boolean> {
    return ((await this.db.query('SELECT 1 FROM skus WHERE sku = $1', [sku])).rowCount ?? 0) > 0;
  }

  // ---------------------------------------------------------------- reservations

  /**
   * Records a reservation whose hold Redis applied, as HELD with its lines; a repeat writes
   * nothing. A REJECTED one (an earlier run gave up while the stores were down) is held again:
   * the id stays usable after an outage.
   */
  async recordHold(hold: { reservationId: string; lines: readonly CartLine[]; customerId?: string; expiresAt: string }): Promise<void> {
    await transaction(this.db, async (c) => {
      const row = await c.query<{ status: string }>(
        `INSERT INTO reservations (id, status, customer_id, expires_at) VALUES ($1, 'HELD', $2, $3)
         ON CONFLICT (id) DO UPDATE SET status = 'HELD', customer_id = EXCLUDED.customer_id, expires_at = EXCLUDED.expires_at,
                                        reason = NULL, updated_at = now()
           WHERE reservations.status = 'REJECTED'
         RETURNING status`,
        [hold.reservationId, hold.customerId ?? null, hold.expiresAt],
      );
      if (row.rowCount === 0) {
        // A retry finds its own lines; another cart under the same id is a conflict.
        const recorded = await this.lines(c, hold.reservationId);
        const same =
          recorded.length === hold.lines.length && hold.lines.every((l) => recorded.some((r) => r.sku === l.sku && r.quantity === l.quantity));
        if (!same) {
          throw new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${hold.reservationId} holds another cart`, { reservationId: hold.reservationId });
        }
        return;
      }
      await c.query('DELETE FROM reservation_lines WHERE reservation_id = $1', [hold.reservationId]);
      await c.query(
        `INSERT INTO reservation_lines (reservation_id, sku, quantity) SELECT $1, l.sku, l.quantity FROM unnest($2::text[], $3::int[]) AS l (sku, quantity)`,
        [hold.reservationId, hold.lines.map((l) => l.sku), hold.lines.map((l) => l.quantity)],
      );
    });
  }

  /** Records how a reservation ended without a sale, unless it has ended already. */
  async recordRelease(reservationId: string, status: ReleaseStatus, reason?: string): Promise<void> {
    await this.db.query(
      `UPDATE reservations SET status = $2, reason = COALESCE($3, reason), updated_at = now()
        WHERE id = $1 AND status IN ('PENDING', 'HELD')`,
      [reservationId, status, reason ?? null],
    );
  }

  /** Moves a HELD reservation's deadline. */
  async recordDeadline(reservationId: string, expiresAt: string): Promise<void> {
    await this.db.query(`UPDATE reservations SET expires_at = $2, updated_at = now() WHERE id = $1 AND status = 'HELD'`, [reservationId, expiresAt]);
  }

  /** Locks a reservation's row; its status and customer. RESERVATION_NOT_FOUND when there is none. */
  async lockReservation(c: PoolClient, reservationId: string): Promise<{ status: ReservationStatus; customerId: string | null }> {
    const row = (
      await c.query<{ status: ReservationStatus; customer_id: string | null }>('SELECT status, customer_id FROM reservations WHERE id = $1 FOR UPDATE', [reservationId])
    ).rows[0];
    if (!row) throw reservationNotFound(reservationId);
    return { status: row.status, customerId: row.customer_id };
  }

  /**
   * The sale of a HELD reservation, in the caller's transaction: at most the held quantity of
   * each line (all of it without `items`), a `sale` movement per sold line, status COMMITTED.
   * A COMMITTED one answers its lines again (a retry). Also the reservation's customer.
   */
  async recordSale(c: PoolClient, reservationId: string, items: readonly CartLine[] | undefined, paymentId?: string): Promise<{ lines: SoldLine[]; customerId: string | null }> {
    const { status, customerId } = await this.lockReservation(c, reservationId);
    return { lines: await this.sell(c, reservationId, status, items, paymentId), customerId };
  }

  private async sell(c: PoolClient, reservationId: string, status: ReservationStatus, items: readonly CartLine[] | undefined, paymentId?: string): Promise<SoldLine[]> {
    const rows = await this.lines(c, reservationId);
    if (status === 'COMMITTED') {
      const sales = await c.query<{ sku: string; id: string }>(`SELECT sku, id::text AS id FROM stock_movements WHERE reservation_id = $1 AND kind = 'sale'`, [
        reservationId,
      ]);
      const saleOf = new Map(sales.rows.map((r) => [r.sku, r.id]));
      return rows.map((r) => ({ ...r, movementId: saleOf.get(r.sku) ?? '0' }));
    }
    if (status !== 'HELD') throw reservationNotHeld(reservationId, status);
    const wanted = new Map(items?.map((i) => [i.sku, i.quantity]));
    for (const item of items ?? []) {
      const held = rows.find((r) => r.sku === item.sku)?.quantity ?? 0;
      if (item.quantity > held) throw quantityExceedsHold(item.sku, item.quantity, held);
    }
    const sold: SoldLine[] = [];
    for (const r of rows) {
      const committedQuantity = items ? (wanted.get(r.sku) ?? 0) : r.quantity;
      // PostgreSQL has the last word: a sale beyond total is refused (INSUFFICIENT_STOCK) here.
      const movementId = committedQuantity > 0 ? (await this.move(c, { sku: r.sku, kind: 'sale', delta: -committedQuantity, reservationId })).movementId : '0';
      sold.push({ ...r, committedQuantity, movementId });
    }
    await c.query(
      `UPDATE reservation_lines l SET committed_quantity = v.q
         FROM unnest($2::text[], $3::int[]) AS v (sku, q) WHERE l.reservation_id = $1 AND l.sku = v.sku`,
      [reservationId, sold.map((l) => l.sku), sold.map((l) => l.committedQuantity)],
    );
    await c.query(`UPDATE reservations SET status = 'COMMITTED', payment_id = $2, updated_at = now() WHERE id = $1`, [reservationId, paymentId ?? null]);
    return sold;
  }

  /**
   * A return of sold units of a COMMITTED reservation, in the caller's transaction: returned
   * quantities and a `return` movement per line; the movement ids in line order. The database's
   * CHECK (returned <= committed) is what keeps racing or repeated returns within the sale.
   */
  async recordReturn(c: PoolClient, reservationId: string, items: readonly CartLine[], reason?: string): Promise<string[]> {
    const { status } = await this.lockReservation(c, reservationId);
    if (status !== 'COMMITTED') {
      throw new StockholdError('RESERVATION_NOT_COMMITTED', `reservation ${reservationId} is ${status}, not COMMITTED`, { reservationId, status });
    }
    const ids: string[] = [];
    for (const item of items) {
      const line = (
        await c.query<{ committed_quantity: number; returned_quantity: number }>(
          'SELECT committed_quantity, returned_quantity FROM reservation_lines WHERE reservation_id = $1 AND sku = $2 FOR UPDATE',
          [reservationId, item.sku],
        )
      ).rows[0];
      const returnable = line ? line.committed_quantity - line.returned_quantity : 0;
      if (item.quantity > returnable) {
        throw new StockholdError('RETURN_EXCEEDS_SALE', `return of ${item.quantity} ${item.sku} exceeds the ${returnable} sold and not yet returned`, {
          sku: item.sku,
          requested: item.quantity,
          returnable,
        });
      }
      await c.query('UPDATE reservation_lines SET returned_quantity = returned_quantity + $3 WHERE reservation_id = $1 AND sku = $2', [
        reservationId,
        item.sku,
        item.quantity,
      ]);
      ids.push((await this.move(c, { sku: item.sku, kind: 'return', delta: item.quantity, reservationId, reason })).movementId);
    }
    return ids;
  }

  /** The deadlines of the reservations PostgreSQL knows among `ids`. */
  async deadlines(ids: readonly string[]): Promise<Map<string, string>> {
    const deadlines = new Map<string, string>();
    if (ids.length === 0) return deadlines;
    const rows = await this.db.query<{ id: string; expires_at: Date }>('SELECT id, expires_at FROM reservations WHERE id = ANY($1::text[])', [ids]);
    for (const row of rows.rows) deadlines.set(row.id, row.expires_at.toISOString());
    return deadlines;
  }

  /** A reservation as PostgreSQL has it (the view once Temporal has forgotten a closed workflow). */
  async reservation(reservationId: string): Promise<ReservationView | undefined> {
    const row = (
      await this.db.query<{ status: ReservationStatus; customer_id: string | null; expires_at: Date; created_at: Date; updated_at: Date }>(
        'SELECT status, customer_id, expires_at, created_at, updated_at FROM reservations WHERE id = $1',
        [reservationId],
      )
    ).rows[0];
    if (!row) return undefined;
    return {
      reservationId,
      status: row.status,
      items: await this.lines(this.db, reservationId),
      customerId: row.customer_id,
      expiresAt: row.expires_at.toISOString(),
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
      workflowId: workflowIdOf(reservationId),
    };
  }

  /** A reservation's lines as PostgreSQL has them, by SKU. */
  async lines(db: Db, reservationId: string): Promise<ReservationLine[]> {
    const rows = await db.query<{ sku: string; quantity: number; committed_quantity: number; returned_quantity: number }>(
      'SELECT sku, quantity, committed_quantity, returned_quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY sku',
      [reservationId],
    );
    return rows.rows.map((r) => ({ sku: r.sku, quantity: r.quantity, committedQuantity: r.committed_quantity, returnedQuantity: r.returned_quantity }));
  }
}
