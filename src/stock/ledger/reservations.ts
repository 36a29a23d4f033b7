/**
 * Reservations and their lines in PostgreSQL after the hold (holds.ts): releases, sales and returns, each in one transaction that takes its SKUs' row locks first
 * (the order of every writer of events, outbox.ts) and writes its events. Methods taking a
 * PoolClient run in the caller's transaction.
 */
import type { Pool, PoolClient } from 'pg';
import { quantityExceedsHold, reservationNotFound, reservationNotHeld, StockholdError } from '../../domain/errors';
import type { ReservationEventType } from '../../domain/events';
import type { CartLine, ReleaseStatus, ReservationLine, ReservationStatus, ReservationView } from '../../domain/types';
import { workflowIdOf } from '../../domain/types';
import { transaction } from '../database';

import type { EventWriter, SkuMovement } from './events';
import type { MovementLedger } from './movements';
import type { SkuLedger } from './skus';
import type { SkuRow } from '../../domain/types';

type Db = Pool | PoolClient;

/** A reservation locked with its SKUs (see lockReservationWithSkus). */
interface LockedReservation {
  status: ReservationStatus;
  customerId: string | null;
  items: ReservationLine[];
  /** The rows of its SKUs when they were locked: the "before" of the change's threshold events. */
  before: Map<string, SkuRow>;
}

/** A sale line: what the line sold and the id of its `sale` movement ('0' when it sold nothing). */
export type SoldLine = ReservationLine & { movementId: string };

export class ReservationLedger {
  constructor(
    readonly db: Pool,
    private readonly skus: SkuLedger,
    private readonly movements: MovementLedger,
    private readonly events: EventWriter,
  ) {}

  /** Writes a reservation change's events (holds.ts's too); the SKUs' rows now and the reservation's view are read here unless given. */
  async writeEvents(
    c: PoolClient,
    before: Map<string, SkuRow>,
    movements: SkuMovement[],
    reservation?: { type: ReservationEventType; reservationId: string; view?: ReservationView },
    after?: Map<string, SkuRow>,
  ): Promise<void> {
    if (!this.events.outbox) return;
    const now = after ?? (await this.skus.states(c, [...before.keys()]));
    const view = reservation && (reservation.view ?? (await this.reservation(reservation.reservationId, c)));
    await this.events.write(c, {
      before,
      after: now,
      movements,
      reservation: reservation && view ? { type: reservation.type, view } : undefined,
    });
  }

  /**
   * Records how a reservation ended without a sale, unless it has ended already (then it writes
   * nothing, events included). A HELD one gives its units back to `skus.reserved`. REJECTED has no
   * event of its own in the contract: only the threshold events its release may cause. Returns the
   * status the reservation has now (undefined when PostgreSQL does not know it): COMMITTED when a
   * sale got there first.
   */
  async recordRelease(
    reservationId: string,
    status: ReleaseStatus,
    reason?: string,
  ): Promise<ReservationStatus | undefined> {
    return transaction(this.db, async (c) => {
      const locked = await this.lockReservationWithSkus(c, reservationId);
      if (!locked || (locked.status !== 'PENDING' && locked.status !== 'HELD')) return locked?.status;
      await c.query(
        `UPDATE reservations SET status = $2, reason = COALESCE($3, reason), updated_at = now() WHERE id = $1`,
        [reservationId, status, reason ?? null],
      );
      const after = locked.status === 'HELD' ? await this.skus.addReserved(c, locked.items, -1) : locked.before;
      const type =
        status === 'CANCELLED' ? 'reservation.cancelled' : status === 'EXPIRED' ? 'reservation.expired' : undefined;
      await this.writeEvents(c, locked.before, [], type && { type, reservationId }, after);
      return status;
    });
  }

  /** Moves a HELD reservation's deadline. */
  async recordExpiresAt(reservationId: string, expiresAt: string): Promise<void> {
    await this.db.query(
      `UPDATE reservations SET expires_at = $2, updated_at = now() WHERE id = $1 AND status = 'HELD'`,
      [reservationId, expiresAt],
    );
  }

  /**
   * Locks a reservation's SKUs (in the shared order) and then its row: its status, customer,
   * lines and its SKUs' rows as locked. Undefined when there is none. The lines are read before
   * the locks and again after: only a re-hold of a REJECTED id changes them, and then the SKUs it
   * added are locked last (out of order, but only against that one reservation's own steps).
   */
  async lockReservationWithSkus(c: PoolClient, reservationId: string): Promise<LockedReservation | undefined> {
    const skus = await c.query<{ sku: string }>('SELECT sku FROM reservation_lines WHERE reservation_id = $1', [
      reservationId,
    ]);
    const before = await this.skus.lockSkus(
      c,
      skus.rows.map((r) => r.sku),
    );
    const row = (
      await c.query<{ status: ReservationStatus; customer_id: string | null }>(
        'SELECT status, customer_id FROM reservations WHERE id = $1 FOR UPDATE',
        [reservationId],
      )
    ).rows[0];
    if (!row) return undefined;
    const items = await this.itemsOf(c, reservationId);
    const added = items.filter((l) => !before.has(l.sku)).map((l) => l.sku);
    if (added.length > 0) for (const [sku, state] of await this.skus.lockSkus(c, added)) before.set(sku, state);
    return { status: row.status, customerId: row.customer_id, items, before };
  }

  /**
   * The sale of a HELD reservation, in the caller's transaction: at most the held quantity of
   * each line (all of it without `items`), a `sale` movement per sold line, status COMMITTED.
   * A COMMITTED one answers its lines again (a retry). Also the reservation's customer.
   */
  async recordSale(
    c: PoolClient,
    reservationId: string,
    items: readonly CartLine[] | undefined,
    paymentId?: string,
  ): Promise<{ items: SoldLine[]; customerId: string | null }> {
    const locked = await this.lockReservationWithSkus(c, reservationId);
    if (!locked) throw reservationNotFound(reservationId);
    return { items: await this.sell(c, reservationId, locked, items, paymentId), customerId: locked.customerId };
  }

  private async sell(
    c: PoolClient,
    reservationId: string,
    locked: LockedReservation,
    items: readonly CartLine[] | undefined,
    paymentId?: string,
  ): Promise<SoldLine[]> {
    const { status, items: rows } = locked;
    if (status === 'COMMITTED') {
      // A retry: the sale is recorded, and so are its events.
      const sales = await c.query<{ sku: string; id: string }>(
        `SELECT sku, id::text AS id FROM stock_movements WHERE reservation_id = $1 AND kind = 'sale'`,
        [reservationId],
      );
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
      const moved =
        committedQuantity > 0
          ? await this.movements.move(c, { sku: r.sku, kind: 'sale', delta: -committedQuantity, reservationId }, false)
          : undefined;
      if (moved) movements.push(moved.movement);
      sold.push({ ...r, committedQuantity, movementId: moved?.movementId ?? '0' });
    }
    // The whole hold leaves `reserved`: the sold units with the sale, the rest released.
    await this.skus.addReserved(c, rows, -1);
    await c.query(
      `UPDATE reservation_lines l SET committed_quantity = v.q
         FROM unnest($2::text[], $3::int[]) AS v (sku, q) WHERE l.reservation_id = $1 AND l.sku = v.sku`,
      [reservationId, sold.map((l) => l.sku), sold.map((l) => l.committedQuantity)],
    );
    await c.query(`UPDATE reservations SET status = 'COMMITTED', payment_id = $2, updated_at = now() WHERE id = $1`, [
      reservationId,
      paymentId ?? null,
    ]);
    await this.writeEvents(c, locked.before, movements, { type: 'reservation.committed', reservationId });
    return sold;
  }

  /**
   * A return of sold units of a COMMITTED reservation, in the caller's transaction: returned
   * quantities and a `return` movement per line; the movement ids in line order. The database's
   * CHECK (returned <= committed) is what keeps racing or repeated returns within the sale.
   */
  async recordReturn(
    c: PoolClient,
    reservationId: string,
    items: readonly CartLine[],
    reason?: string,
  ): Promise<string[]> {
    // Its SKUs locked first and in order (the movements below write their events under them).
    const locked = await this.lockReservationWithSkus(c, reservationId);
    if (!locked) throw reservationNotFound(reservationId);
    const { status } = locked;
    if (status !== 'COMMITTED') {
      throw new StockholdError(
        'RESERVATION_NOT_COMMITTED',
        `reservation ${reservationId} is ${status}, not COMMITTED`,
        { reservationId, status },
      );
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
        throw new StockholdError(
          'RETURN_EXCEEDS_SALE',
          `return of ${item.quantity} ${item.sku} exceeds the ${returnable} sold and not yet returned`,
          {
            sku: item.sku,
            requested: item.quantity,
            returnable,
          },
        );
      }
      await c.query(
        'UPDATE reservation_lines SET returned_quantity = returned_quantity + $3 WHERE reservation_id = $1 AND sku = $2',
        [reservationId, item.sku, item.quantity],
      );
      ids.push(
        (await this.movements.move(c, { sku: item.sku, kind: 'return', delta: item.quantity, reservationId, reason }))
          .movementId,
      );
    }
    return ids;
  }

  /** When each reservation PostgreSQL knows among `ids` expires. */
  async expiresAtOf(ids: readonly string[]): Promise<Map<string, string>> {
    const expiries = new Map<string, string>();
    if (ids.length === 0) return expiries;
    const rows = await this.db.query<{ id: string; expires_at: Date }>(
      'SELECT id, expires_at FROM reservations WHERE id = ANY($1::text[])',
      [ids],
    );
    for (const row of rows.rows) expiries.set(row.id, row.expires_at.toISOString());
    return expiries;
  }

  /** A reservation as PostgreSQL has it (the view once Temporal has forgotten a closed workflow). */
  async reservation(reservationId: string, db: Db = this.db): Promise<ReservationView | undefined> {
    const row = (
      await db.query<{
        status: ReservationStatus;
        customer_id: string | null;
        expires_at: Date;
        created_at: Date;
        updated_at: Date;
      }>('SELECT status, customer_id, expires_at, created_at, updated_at FROM reservations WHERE id = $1', [
        reservationId,
      ])
    ).rows[0];
    if (!row) return undefined;
    return {
      reservationId,
      status: row.status,
      items: await this.itemsOf(db, reservationId),
      customerId: row.customer_id,
      expiresAt: row.expires_at.toISOString(),
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
      workflowId: workflowIdOf(reservationId),
    };
  }

  /** A reservation's lines as PostgreSQL has them, by SKU. */
  async itemsOf(db: Db, reservationId: string): Promise<ReservationLine[]> {
    const rows = await db.query<{
      sku: string;
      quantity: number;
      committed_quantity: number;
      returned_quantity: number;
    }>(
      'SELECT sku, quantity, committed_quantity, returned_quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY sku',
      [reservationId],
    );
    return rows.rows.map((r) => ({
      sku: r.sku,
      quantity: r.quantity,
      committedQuantity: r.committed_quantity,
      returnedQuantity: r.returned_quantity,
    }));
  }
}
