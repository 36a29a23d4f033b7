/**
 * A hold in PostgreSQL, after Redis applied it: the reservation row HELD with its lines and the
 * SKUs' `reserved`, in one transaction under the SKUs' row locks, where PostgreSQL has the last
 * word on the promise (DESIGN.md invariant 1a): a hold it cannot back is refused (LedgerRefusal).
 */
import type { Pool, PoolClient } from 'pg';
import { customerIdRequired, customerLimitExceeded, insufficientStock, StockholdError } from '../../domain/errors';
import type { CartLine, ReservationStatus, ReservationView } from '../../domain/types';
import { workflowIdOf } from '../../domain/types';
import { transaction } from '../database';

import type { ReservationLedger } from './reservations';
import type { SkuLedger } from './skus';
import type { SkuRow } from '../../domain/types';

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

export class HoldLedger {
  constructor(
    readonly db: Pool,
    private readonly skus: SkuLedger,
    private readonly reservations: ReservationLedger,
  ) {}

  /**
   * Records a reservation whose hold Redis applied, as HELD with its lines; a repeat writes
   * nothing. A REJECTED one (an earlier run gave up while the stores were down) is held again:
   * the id stays usable after an outage.
   */
  async recordHold(hold: {
    reservationId: string;
    items: readonly CartLine[];
    customerId?: string;
    expiresAt: string;
  }): Promise<void> {
    await transaction(this.db, async (c) => {
      // The SKUs' locks first (the order of every writer of events), then the reservation's row.
      const before = await this.skus.lockSkus(
        c,
        hold.items.map((l) => l.sku),
      );
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
        const { status } = (
          await c.query<{ status: ReservationStatus }>('SELECT status FROM reservations WHERE id = $1', [
            hold.reservationId,
          ])
        ).rows[0]!;
        if (status !== 'HELD') {
          throw new StockholdError(
            'RESERVATION_ID_CONFLICT',
            `reservation ${hold.reservationId} already finished; it cannot hold again`,
            {
              reservationId: hold.reservationId,
            },
          );
        }
        // A retry finds its own lines; another cart under the same id is a conflict.
        const recorded = await this.reservations.itemsOf(c, hold.reservationId);
        const same =
          recorded.length === hold.items.length &&
          hold.items.every((l) => recorded.some((r) => r.sku === l.sku && r.quantity === l.quantity));
        if (!same) {
          throw new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${hold.reservationId} holds another cart`, {
            reservationId: hold.reservationId,
          });
        }
        return;
      }
      // PostgreSQL's last word on the promise: the hold must fit what it counts itself, whatever
      // Redis answered (Redis may have lost another buyer's hold). Checked on the rows locked above.
      await this.checkHold(c, hold, before);
      await c.query('DELETE FROM reservation_lines WHERE reservation_id = $1', [hold.reservationId]);
      await c.query(
        `INSERT INTO reservation_lines (reservation_id, sku, quantity) SELECT $1, l.sku, l.quantity FROM unnest($2::text[], $3::int[]) AS l (sku, quantity)`,
        [hold.reservationId, hold.items.map((l) => l.sku), hold.items.map((l) => l.quantity)],
      );
      const after = await this.skus.addReserved(c, hold.items, 1);
      // The view from what this transaction wrote: the hold's path is the flash sale's, and every
      // statement here runs under the hot SKU's lock.
      const recorded = row.rows[0]!;
      const view: ReservationView = {
        reservationId: hold.reservationId,
        status: 'HELD',
        items: hold.items
          .map((l) => ({ sku: l.sku, quantity: l.quantity, committedQuantity: 0, returnedQuantity: 0 }))
          .sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)),
        customerId: hold.customerId ?? null,
        expiresAt: recorded.expires_at.toISOString(),
        createdAt: recorded.created_at.toISOString(),
        updatedAt: recorded.updated_at.toISOString(),
        workflowId: workflowIdOf(hold.reservationId),
      };
      await this.reservations.writeEvents(
        c,
        before,
        [],
        { type: 'reservation.held', reservationId: hold.reservationId, view },
        after,
      );
    });
  }

  /**
   * Refuses a new hold PostgreSQL cannot back (LedgerRefusal): a line that would take the SKU's
   * `reserved` above its `total`, or, on a SKU with `maxPerCustomer`, the customer's held plus
   * bought units above the limit as PostgreSQL counts them. `before` holds the SKUs' rows, locked;
   * the reservation's own row is already written as HELD (its lines, if a REJECTED run left any,
   * are about to be replaced: they never count).
   */
  private async checkHold(
    c: PoolClient,
    hold: { reservationId: string; items: readonly CartLine[]; customerId?: string },
    before: Map<string, SkuRow>,
  ): Promise<void> {
    for (const line of hold.items) {
      const row = before.get(line.sku)!;
      if (row.reserved + line.quantity > row.total)
        throw new LedgerRefusal(insufficientStock(line.sku, line.quantity, row.total - row.reserved));
    }
    const limited = hold.items.filter((l) => before.get(l.sku)!.maxPerCustomer !== null);
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
      const [held, bought, limit] = [
        Number(row?.held ?? 0),
        Number(row?.bought ?? 0),
        before.get(line.sku)!.maxPerCustomer!,
      ];
      if (held + bought + line.quantity > limit) {
        throw new LedgerRefusal(
          customerLimitExceeded(line.sku, hold.customerId, line.quantity, { limit, held, bought }),
        );
      }
    }
  }
}
