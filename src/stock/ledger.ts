/**
 * The PostgreSQL ledger: every SQL statement of the stock module. `skus.total` changes only with
 * a `stock_movements` row in the same transaction; reservations and their lines record holds,
 * sales and returns. Methods taking a PoolClient run inside the caller's transaction.
 */
import type { Pool, PoolClient } from 'pg';
import { transaction } from './database';
import {
  customerIdRequired,
  customerLimitExceeded,
  insufficientStock,
  quantityExceedsHold,
  reservationNotFound,
  reservationNotHeld,
  skuNotFound,
  StockholdError,
} from '../domain/errors';
import { MAX_STOCK } from '../domain/limits';
import type { ReservationEventType } from '../domain/events';
import type { CartLine, Movement, MovementKind, ReleaseStatus, ReservationLine, ReservationStatus, ReservationView, SkuSettings } from '../domain/types';
import { workflowIdOf } from '../domain/types';
import { changeEvents, recordEvents, type SkuState } from './outbox';
import type { SkuFigures } from './redis/counters';

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

const SKU_COLUMNS = 'name, total, reserved, low_stock_threshold, max_per_customer';
type SkuColumns = { name: string; total: string; reserved: string; low_stock_threshold: number | null; max_per_customer: number | null };
function skuRowOf(r: SkuColumns): SkuState {
  return { name: r.name, total: Number(r.total), reserved: Number(r.reserved), lowStockThreshold: r.low_stock_threshold, maxPerCustomer: r.max_per_customer };
}

/** A ledger movement as its `stock.changed` event carries it, with its SKU. */
type SkuMovement = Movement & { sku: string };
function movementRowOf(sku: string, r: { id: string; kind: MovementKind; delta: string; reservation_id: string | null; reason: string | null; at: Date }): SkuMovement {
  return {
    sku,
    id: r.id,
    kind: r.kind,
    delta: Number(r.delta),
    ...(r.reservation_id ? { reservationId: r.reservation_id } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    at: r.at.toISOString(),
  };
}
const MOVEMENT_RETURNING = 'RETURNING id::text AS id, kind, delta, reservation_id, reason, at';

/** A reservation locked with its SKUs (see lockReservationWithSkus). */
interface LockedReservation {
  status: ReservationStatus;
  customerId: string | null;
  lines: ReservationLine[];
  /** The rows of its SKUs when they were locked: the "before" of the change's threshold events. */
  before: Map<string, SkuState>;
}

/**
 * A hold PostgreSQL refused although Redis had applied it: the two stores disagree (Redis lost
 * another reservation's hold), which only a store failure explains. `refusal` is what the buyer hears.
 */
export class LedgerRefusal extends Error {
  constructor(readonly refusal: StockholdError) {
    super(`PostgreSQL refused a hold Redis applied: ${refusal.message}`);
    this.name = 'LedgerRefusal';
  }
}

/** A sale line: what the line sold and the id of its `sale` movement ('0' when it sold nothing). */
export type SoldLine = ReservationLine & { movementId: string };

export class Ledger {
  /** `outbox: false` writes no events (only bench:outbox's baseline does, to measure what they cost). */
  constructor(
    readonly db: Pool,
    private readonly outbox = true,
  ) {}

  // ---------------------------------------------------------------- SKUs and movements

  /** Inserts a new SKU and its `initial` movement; SKU_EXISTS when it is there already. */
  async createSku(c: PoolClient, sku: string, name: string, total: number): Promise<{ movementId: string }> {
    const inserted = await c.query('INSERT INTO skus (sku, name, total) VALUES ($1, $2, $3) ON CONFLICT (sku) DO NOTHING', [sku, name, total]);
    if (inserted.rowCount === 0) throw new StockholdError('SKU_EXISTS', `SKU ${sku} already exists`, { sku });
    const initial = await c.query<Parameters<typeof movementRowOf>[1]>(
      `INSERT INTO stock_movements (sku, kind, delta, reason) VALUES ($1, 'initial', $2, 'created') ${MOVEMENT_RETURNING}`,
      [sku, total],
    );
    // The new row is this transaction's until it commits: no other writer of the SKU gets before it.
    // No threshold event: a SKU starts with no threshold, and "from 0" is not a change back.
    const state: SkuState = { name, total, reserved: 0, lowStockThreshold: null, maxPerCustomer: null };
    await this.writeEvents(c, new Map(), [movementRowOf(sku, initial.rows[0]!)], undefined, new Map([[sku, state]]));
    return { movementId: initial.rows[0]!.id };
  }

  /** Locks a SKU's row for the transaction and returns it; SKU_NOT_FOUND when there is none. */
  async lockSku(c: PoolClient, sku: string): Promise<SkuState> {
    return (await this.lockSkus(c, [sku])).get(sku)!;
  }

  /**
   * Locks these SKUs' rows for the transaction, in one order shared by every writer (byte order of
   * the SKU), so that writers of several SKUs never deadlock; SKU_NOT_FOUND when one is missing.
   * Every transaction that writes events takes its SKUs' locks before them (see outbox.ts).
   */
  async lockSkus(c: PoolClient, skus: readonly string[]): Promise<Map<string, SkuState>> {
    const wanted = [...new Set(skus)];
    const rows = await c.query<SkuColumns & { sku: string }>(
      `SELECT sku, ${SKU_COLUMNS} FROM skus WHERE sku = ANY($1::text[]) ORDER BY sku COLLATE "C" FOR UPDATE`,
      [wanted],
    );
    const locked = new Map(rows.rows.map((r) => [r.sku, skuRowOf(r)]));
    const missing = wanted.find((sku) => !locked.has(sku));
    if (missing !== undefined) throw skuNotFound(missing);
    return locked;
  }

  /**
   * Writes the events of a change in the caller's transaction, with the SKUs of `before` locked:
   * the movements' `stock.changed`, the reservation's event, and the threshold events of each SKU
   * from its row in `before` to its row now (`after`, read here unless given).
   */
  private async writeEvents(
    c: PoolClient,
    before: Map<string, SkuState>,
    movements: SkuMovement[],
    reservation?: { type: ReservationEventType; reservationId: string; view?: ReservationView },
    after?: Map<string, SkuState>,
  ): Promise<void> {
    if (!this.outbox) return;
    const now = after ?? (await this.skuStates(c, [...before.keys()]));
    const view = reservation && (reservation.view ?? (await this.reservation(reservation.reservationId, c)));
    await recordEvents(c, changeEvents({ before, after: now, movements, reservation: reservation && view ? { type: reservation.type, view } : undefined }));
  }

  /** These SKUs' rows, as this transaction sees them. */
  private async skuStates(c: PoolClient, skus: readonly string[]): Promise<Map<string, SkuState>> {
    const rows = await c.query<SkuColumns & { sku: string }>(`SELECT sku, ${SKU_COLUMNS} FROM skus WHERE sku = ANY($1::text[])`, [skus]);
    return new Map(rows.rows.map((r) => [r.sku, skuRowOf(r)]));
  }

  /**
   * Adds (sign 1) or takes (-1) these lines' quantities to or from what HELD reservations hold of
   * their SKUs (locked by the caller); the SKUs' rows after it.
   */
  private async addReserved(c: PoolClient, lines: readonly { sku: string; quantity: number }[], sign: 1 | -1): Promise<Map<string, SkuState>> {
    const rows = await c.query<SkuColumns & { sku: string }>(
      `UPDATE skus s SET reserved = s.reserved + v.q FROM unnest($1::text[], $2::bigint[]) AS v (sku, q) WHERE s.sku = v.sku
       RETURNING s.sku, ${SKU_COLUMNS.split(', ').map((col) => `s.${col}`).join(', ')}`,
      [lines.map((l) => l.sku), lines.map((l) => sign * l.quantity)],
    );
    return new Map(rows.rows.map((r) => [r.sku, skuRowOf(r)]));
  }

  /**
   * Changes a SKU's name and settings (the fields given; null unsets a setting) and returns its
   * row, locked for the transaction; SKU_NOT_FOUND when there is none.
   */
  async updateSku(c: PoolClient, sku: string, patch: { name?: string; lowStockThreshold?: number | null; maxPerCustomer?: number | null }): Promise<SkuState> {
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

  /**
   * Changes a SKU's total by `delta` with its ledger row; the row after it. The row lock comes
   * before the movement's id, so movement ids of one SKU follow the order of their commits. Writes
   * the movement's events (stock.changed and any threshold crossing) unless `events` is false
   * (a caller that changes more in the same transaction writes them itself).
   */
  async move(
    c: PoolClient,
    movement: { sku: string; kind: Exclude<MovementKind, 'initial'>; delta: number; reservationId?: string; reason?: string },
    events = true,
  ): Promise<{ movementId: string; movement: SkuMovement } & SkuState> {
    const updated = await c.query<SkuColumns>(
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
    const inserted = await c.query<Parameters<typeof movementRowOf>[1]>(
      `INSERT INTO stock_movements (sku, kind, delta, reservation_id, reason) VALUES ($1, $2, $3, $4, $5) ${MOVEMENT_RETURNING}`,
      [movement.sku, movement.kind, movement.delta, movement.reservationId ?? null, movement.reason ?? null],
    );
    const after = skuRowOf(row);
    const moved = movementRowOf(movement.sku, inserted.rows[0]!);
    if (events) {
      // The UPDATE above holds the row lock; only the total changed, by delta.
      const before = new Map([[movement.sku, { ...after, total: after.total - movement.delta }]]);
      await this.writeEvents(c, before, [moved], undefined, new Map([[movement.sku, after]]));
    }
    return { movementId: moved.id, movement: moved, ...after };
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
      // The SKUs' locks first (the order of every writer of events), then the reservation's row.
      const before = await this.lockSkus(c, hold.lines.map((l) => l.sku));
      const row = await c.query<{ expires_at: Date; created_at: Date; updated_at: Date }>(
        `INSERT INTO reservations (id, status, customer_id, expires_at) VALUES ($1, 'HELD', $2, $3)
         ON CONFLICT (id) DO UPDATE SET status = 'HELD', customer_id = EXCLUDED.customer_id, expires_at = EXCLUDED.expires_at,
                                        reason = NULL, updated_at = now()
           WHERE reservations.status = 'REJECTED'
         RETURNING expires_at, created_at, updated_at`,
        [hold.reservationId, hold.customerId ?? null, hold.expiresAt],
      );
      if (row.rowCount === 0) {
        // A finished reservation never holds again, also once Redis has forgotten its tombstone
        // (pruned after the retention, or lost with Redis's data): the caller gives back what Redis took.
        const { status } = (await c.query<{ status: ReservationStatus }>('SELECT status FROM reservations WHERE id = $1', [hold.reservationId])).rows[0]!;
        if (status !== 'HELD') {
          throw new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${hold.reservationId} already finished; it cannot hold again`, {
            reservationId: hold.reservationId,
          });
        }
        // A retry finds its own lines; another cart under the same id is a conflict.
        const recorded = await this.lines(c, hold.reservationId);
        const same =
          recorded.length === hold.lines.length && hold.lines.every((l) => recorded.some((r) => r.sku === l.sku && r.quantity === l.quantity));
        if (!same) {
          throw new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${hold.reservationId} holds another cart`, { reservationId: hold.reservationId });
        }
        return;
      }
      // PostgreSQL's last word on the promise: the hold must fit what it counts itself, whatever
      // Redis answered (Redis may have lost another buyer's hold). Checked on the rows locked above.
      await this.checkHold(c, hold, before);
      await c.query('DELETE FROM reservation_lines WHERE reservation_id = $1', [hold.reservationId]);
      await c.query(
        `INSERT INTO reservation_lines (reservation_id, sku, quantity) SELECT $1, l.sku, l.quantity FROM unnest($2::text[], $3::int[]) AS l (sku, quantity)`,
        [hold.reservationId, hold.lines.map((l) => l.sku), hold.lines.map((l) => l.quantity)],
      );
      const after = await this.addReserved(c, hold.lines, 1);
      // The view from what this transaction wrote: the hold's path is the flash sale's, and every
      // statement here runs under the hot SKU's lock.
      const recorded = row.rows[0]!;
      const view: ReservationView = {
        reservationId: hold.reservationId,
        status: 'HELD',
        items: hold.lines
          .map((l) => ({ sku: l.sku, quantity: l.quantity, committedQuantity: 0, returnedQuantity: 0 }))
          .sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)),
        customerId: hold.customerId ?? null,
        expiresAt: recorded.expires_at.toISOString(),
        createdAt: recorded.created_at.toISOString(),
        updatedAt: recorded.updated_at.toISOString(),
        workflowId: workflowIdOf(hold.reservationId),
      };
      await this.writeEvents(c, before, [], { type: 'reservation.held', reservationId: hold.reservationId, view }, after);
    });
  }

  /**
   * Refuses a new hold PostgreSQL cannot back (LedgerRefusal): a line that would take the SKU's
   * `reserved` above its `total`, or, on a SKU with `maxPerCustomer`, the customer's held plus
   * bought units above the limit as PostgreSQL counts them. `before` holds the SKUs' rows, locked;
   * the reservation's own row is already written as HELD (its lines, if a REJECTED run left any,
   * are about to be replaced: they never count).
   */
  private async checkHold(c: PoolClient, hold: { reservationId: string; lines: readonly CartLine[]; customerId?: string }, before: Map<string, SkuState>): Promise<void> {
    for (const line of hold.lines) {
      const row = before.get(line.sku)!;
      if (row.reserved + line.quantity > row.total) throw new LedgerRefusal(insufficientStock(line.sku, line.quantity, row.total - row.reserved));
    }
    const limited = hold.lines.filter((l) => before.get(l.sku)!.maxPerCustomer !== null);
    if (limited.length === 0) return;
    if (!hold.customerId) throw new LedgerRefusal(customerIdRequired(limited[0]!.sku));
    const counts = await c.query<{ sku: string; held: string; bought: string }>(
      `SELECT l.sku, sum(CASE WHEN r.status = 'HELD' THEN l.quantity ELSE 0 END) AS held,
              sum(l.committed_quantity - l.returned_quantity) AS bought
         FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id
        WHERE r.customer_id = $1 AND l.sku = ANY($2::text[]) AND r.id <> $3 GROUP BY l.sku`,
      [hold.customerId, limited.map((l) => l.sku), hold.reservationId],
    );
    for (const line of limited) {
      const row = counts.rows.find((r) => r.sku === line.sku);
      const [held, bought, limit] = [Number(row?.held ?? 0), Number(row?.bought ?? 0), before.get(line.sku)!.maxPerCustomer!];
      if (held + bought + line.quantity > limit) {
        throw new LedgerRefusal(customerLimitExceeded(line.sku, hold.customerId, line.quantity, { limit, held, bought }));
      }
    }
  }

  /**
   * Records how a reservation ended without a sale, unless it has ended already (then it writes
   * nothing, events included). A HELD one gives its units back to `skus.reserved`. REJECTED has no
   * event of its own in the contract: only the threshold events its release may cause.
   */
  async recordRelease(reservationId: string, status: ReleaseStatus, reason?: string): Promise<void> {
    await transaction(this.db, async (c) => {
      const locked = await this.lockReservationWithSkus(c, reservationId);
      if (!locked || (locked.status !== 'PENDING' && locked.status !== 'HELD')) return;
      await c.query(`UPDATE reservations SET status = $2, reason = COALESCE($3, reason), updated_at = now() WHERE id = $1`, [
        reservationId,
        status,
        reason ?? null,
      ]);
      const after = locked.status === 'HELD' ? await this.addReserved(c, locked.lines, -1) : locked.before;
      const type = status === 'CANCELLED' ? 'reservation.cancelled' : status === 'EXPIRED' ? 'reservation.expired' : undefined;
      await this.writeEvents(c, locked.before, [], type && { type, reservationId }, after);
    });
  }

  /** Moves a HELD reservation's deadline. */
  async recordDeadline(reservationId: string, expiresAt: string): Promise<void> {
    await this.db.query(`UPDATE reservations SET expires_at = $2, updated_at = now() WHERE id = $1 AND status = 'HELD'`, [reservationId, expiresAt]);
  }

  /**
   * Locks a reservation's SKUs (in the shared order) and then its row: its status, customer,
   * lines and its SKUs' rows as locked. Undefined when there is none. The lines are read before
   * the locks and again after: only a re-hold of a REJECTED id changes them, and then the SKUs it
   * added are locked last (out of order, but only against that one reservation's own steps).
   */
  async lockReservationWithSkus(c: PoolClient, reservationId: string): Promise<LockedReservation | undefined> {
    const skus = await c.query<{ sku: string }>('SELECT sku FROM reservation_lines WHERE reservation_id = $1', [reservationId]);
    const before = await this.lockSkus(c, skus.rows.map((r) => r.sku));
    const row = (
      await c.query<{ status: ReservationStatus; customer_id: string | null }>('SELECT status, customer_id FROM reservations WHERE id = $1 FOR UPDATE', [reservationId])
    ).rows[0];
    if (!row) return undefined;
    const lines = await this.lines(c, reservationId);
    const added = lines.filter((l) => !before.has(l.sku)).map((l) => l.sku);
    if (added.length > 0) for (const [sku, state] of await this.lockSkus(c, added)) before.set(sku, state);
    return { status: row.status, customerId: row.customer_id, lines, before };
  }

  /**
   * The sale of a HELD reservation, in the caller's transaction: at most the held quantity of
   * each line (all of it without `items`), a `sale` movement per sold line, status COMMITTED.
   * A COMMITTED one answers its lines again (a retry). Also the reservation's customer.
   */
  async recordSale(c: PoolClient, reservationId: string, items: readonly CartLine[] | undefined, paymentId?: string): Promise<{ lines: SoldLine[]; customerId: string | null }> {
    const locked = await this.lockReservationWithSkus(c, reservationId);
    if (!locked) throw reservationNotFound(reservationId);
    return { lines: await this.sell(c, reservationId, locked, items, paymentId), customerId: locked.customerId };
  }

  private async sell(c: PoolClient, reservationId: string, locked: LockedReservation, items: readonly CartLine[] | undefined, paymentId?: string): Promise<SoldLine[]> {
    const { status, lines: rows } = locked;
    if (status === 'COMMITTED') {
      // A retry: the sale is recorded, and so are its events.
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
    const movements: SkuMovement[] = [];
    for (const r of rows) {
      const committedQuantity = items ? (wanted.get(r.sku) ?? 0) : r.quantity;
      // PostgreSQL has the last word: a sale beyond total is refused (INSUFFICIENT_STOCK) here.
      const moved = committedQuantity > 0 ? await this.move(c, { sku: r.sku, kind: 'sale', delta: -committedQuantity, reservationId }, false) : undefined;
      if (moved) movements.push(moved.movement);
      sold.push({ ...r, committedQuantity, movementId: moved?.movementId ?? '0' });
    }
    // The whole hold leaves `reserved`: the sold units with the sale, the rest released.
    await this.addReserved(c, rows, -1);
    await c.query(
      `UPDATE reservation_lines l SET committed_quantity = v.q
         FROM unnest($2::text[], $3::int[]) AS v (sku, q) WHERE l.reservation_id = $1 AND l.sku = v.sku`,
      [reservationId, sold.map((l) => l.sku), sold.map((l) => l.committedQuantity)],
    );
    await c.query(`UPDATE reservations SET status = 'COMMITTED', payment_id = $2, updated_at = now() WHERE id = $1`, [reservationId, paymentId ?? null]);
    await this.writeEvents(c, locked.before, movements, { type: 'reservation.committed', reservationId });
    return sold;
  }

  /**
   * A return of sold units of a COMMITTED reservation, in the caller's transaction: returned
   * quantities and a `return` movement per line; the movement ids in line order. The database's
   * CHECK (returned <= committed) is what keeps racing or repeated returns within the sale.
   */
  async recordReturn(c: PoolClient, reservationId: string, items: readonly CartLine[], reason?: string): Promise<string[]> {
    // Its SKUs locked first and in order (the movements below write their events under them).
    const locked = await this.lockReservationWithSkus(c, reservationId);
    if (!locked) throw reservationNotFound(reservationId);
    const { status } = locked;
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
  async reservation(reservationId: string, db: Db = this.db): Promise<ReservationView | undefined> {
    const row = (
      await db.query<{ status: ReservationStatus; customer_id: string | null; expires_at: Date; created_at: Date; updated_at: Date }>(
        'SELECT status, customer_id, expires_at, created_at, updated_at FROM reservations WHERE id = $1',
        [reservationId],
      )
    ).rows[0];
    if (!row) return undefined;
    return {
      reservationId,
      status: row.status,
      items: await this.lines(db, reservationId),
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
