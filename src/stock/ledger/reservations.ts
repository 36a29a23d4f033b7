/**
 * Reservations and their lines in PostgreSQL after the hold (holds.ts): releases, sales and
 * returns. A release and a sale are each one call of a function of migration 1765300000000, which
 * takes the SKUs' row locks (in the order of every writer of events, outbox.ts), writes, and
 * records the events, so the hot rows are held for the server's work only. Methods taking a
 * PoolClient run in the caller's transaction.
 */
import type { Pool, PoolClient } from 'pg';
import {
  insufficientStock,
  quantityExceedsHold,
  reservationNotFound,
  reservationNotHeld,
  StockholdError,
} from '../../domain/errors';
import type {
  CartLine,
  LineAllocation,
  ReleaseStatus,
  ReservationLine,
  ReservationStatus,
  ReservationView,
} from '../../domain/types';
import { workflowIdOf } from '../../domain/types';

import type { MovementLedger } from './movements';

type Db = Pool | PoolClient;

/** A sale line: what the line sold and its `sale` movements, one per location sold from (none when it sold nothing). */
export type SoldLine = ReservationLine & {
  sales: { id: string; locationId: string; units: number }[];
  allocations?: LineAllocation[];
};

/** What `stockhold_sell` answers: the sale (or the recorded one, on a retry), or a refusal having written nothing. */
type SaleAnswer =
  | { outcome: 'sold' | 'repeat'; customerId: string | null; items: SoldLine[] }
  | { refusal: 'NOT_FOUND' }
  | { refusal: 'NOT_HELD'; status: ReservationStatus }
  | { refusal: 'QUANTITY_EXCEEDS_HOLD'; sku: string; requested: number; held: number }
  | { refusal: 'INSUFFICIENT_STOCK'; sku: string; requested: number; available: number };

export class ReservationLedger {
  /** `events: false` writes no events (only bench:outbox's baseline does, to measure what they cost). */
  constructor(
    readonly db: Pool,
    private readonly movements: MovementLedger,
    private readonly events = true,
  ) {}

  /**
   * Records how a reservation ended without a sale, unless it has ended already (then it writes
   * nothing, events included). A HELD one gives its units back to `skus.reserved`. REJECTED has no
   * event of its own in the contract: only the threshold events its release may cause. Returns the
   * status the reservation has now (undefined when PostgreSQL does not know it): COMMITTED when a
   * sale got there first. One call of `stockhold_release`, under the SKUs' row locks.
   */
  async recordRelease(
    reservationId: string,
    status: ReleaseStatus,
    reason?: string,
  ): Promise<ReservationStatus | undefined> {
    const row = await this.db.query<{ status: ReservationStatus | null }>(
      'SELECT stockhold_release($1, $2, $3, $4) AS status',
      [reservationId, status, reason ?? null, this.events],
    );
    return row.rows[0]!.status ?? undefined;
  }

  /** Moves a HELD reservation's deadline. */
  async recordExpiresAt(reservationId: string, expiresAt: string): Promise<void> {
    await this.db.query(
      `UPDATE reservations SET expires_at = $2, updated_at = now() WHERE id = $1 AND status = 'HELD'`,
      [reservationId, expiresAt],
    );
  }

  /**
   * The sale of a HELD reservation: at most the held quantity of each line (all of it without
   * `items`), a `sale` movement per sold line, the whole hold out of `reserved`, status
   * COMMITTED, its events. A COMMITTED one answers its lines again (a retry). Also the
   * reservation's customer. One call of `stockhold_sell`, under the SKUs' row locks; PostgreSQL has
   * the last word: a sale beyond its total is refused (INSUFFICIENT_STOCK).
   */
  async recordSale(
    reservationId: string,
    items: readonly CartLine[] | undefined,
    paymentId?: string,
  ): Promise<{ items: SoldLine[]; customerId: string | null }> {
    const answer = (
      await this.db.query<{ answer: SaleAnswer }>('SELECT stockhold_sell($1, $2, $3, $4, $5) AS answer', [
        reservationId,
        items ? items.map((l) => l.sku) : null,
        items ? items.map((l) => l.quantity) : null,
        paymentId ?? null,
        this.events,
      ])
    ).rows[0]!.answer;
    if ('outcome' in answer) return { items: answer.items, customerId: answer.customerId };
    switch (answer.refusal) {
      case 'NOT_FOUND':
        throw reservationNotFound(reservationId);
      case 'NOT_HELD':
        throw reservationNotHeld(reservationId, answer.status);
      case 'QUANTITY_EXCEEDS_HOLD':
        throw quantityExceedsHold(answer.sku, answer.requested, answer.held);
      case 'INSUFFICIENT_STOCK':
        throw insufficientStock(answer.sku, answer.requested, answer.available);
    }
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
    /** Where the units go back (contract v3); absent: where they were sold from, the last allocated first. */
    locationId?: string,
  ): Promise<string[]> {
    // Its row locked, then its SKUs in order (the movements below write their events under them).
    const { status } = (
      await c.query<{ status: ReservationStatus | null }>('SELECT status FROM stockhold_lock_reservation($1)', [
        reservationId,
      ])
    ).rows[0]!;
    if (status === null) throw reservationNotFound(reservationId);
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
      // Back where the units were sold, the last allocated first (contract v3): one `return`
      // movement per location.
      const parts = await c.query<{ location_id: string; returnable: number }>(
        `SELECT location_id, committed_quantity - returned_quantity AS returnable FROM reservation_allocations
          WHERE reservation_id = $1 AND sku = $2 AND committed_quantity > returned_quantity ORDER BY position DESC`,
        [reservationId, item.sku],
      );
      let left = item.quantity;
      const back = new Map<string, number>();
      for (const part of parts.rows) {
        const units = Math.min(left, part.returnable);
        if (units <= 0) break;
        left -= units;
        await c.query(
          `UPDATE reservation_allocations SET returned_quantity = returned_quantity + $4
            WHERE reservation_id = $1 AND sku = $2 AND location_id = $3`,
          [reservationId, item.sku, part.location_id, units],
        );
        const to = locationId ?? part.location_id;
        back.set(to, (back.get(to) ?? 0) + units);
      }
      // Units sold before allocations were recorded per location were sold at `default`.
      if (left > 0) back.set(locationId ?? 'default', (back.get(locationId ?? 'default') ?? 0) + left);
      for (const [to, units] of back)
        ids.push(
          (
            await this.movements.move(c, {
              sku: item.sku,
              kind: 'return',
              delta: units,
              reservationId,
              reason,
              locationId: to,
            })
          ).movementId,
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
      allocations: LineAllocation[] | null;
    }>(
      `SELECT l.sku, l.quantity, l.committed_quantity, l.returned_quantity,
              (SELECT jsonb_agg(jsonb_build_object('locationId', a.location_id, 'quantity', a.quantity,
                                                   'committedQuantity', a.committed_quantity) ORDER BY a.position)
                 FROM reservation_allocations a
                WHERE a.reservation_id = l.reservation_id AND a.sku = l.sku
               HAVING bool_or(a.location_id <> 'default')) AS allocations
         FROM reservation_lines l WHERE l.reservation_id = $1 ORDER BY l.sku`,
      [reservationId],
    );
    // Contract v3's allocations only for a line held elsewhere than `default` alone.
    return rows.rows.map((r) => ({
      sku: r.sku,
      quantity: r.quantity,
      committedQuantity: r.committed_quantity,
      returnedQuantity: r.returned_quantity,
      ...(r.allocations ? { allocations: r.allocations } : {}),
    }));
  }
}
