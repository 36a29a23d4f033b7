/**
 * A hold in PostgreSQL, after Redis applied it: the reservation row HELD with its lines and the
 * SKUs' `reserved`, where PostgreSQL has the last word on the promise (DESIGN.md invariant 1a): a
 * hold it cannot back is refused (LedgerRefusal). One call of `stockhold_hold` (migration
 * 1765300000000): the SKUs' row locks are held for the server's work only, never across round trips.
 */
import type { Pool } from 'pg';
import {
  customerIdRequired,
  customerLimitExceeded,
  insufficientStock,
  skuNotFound,
  StockholdError,
} from '../../domain/errors';
import type { Allocation, CartLine } from '../../domain/types';

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

/** What `stockhold_hold` answers: an outcome, or a refusal having written nothing. */
type HoldAnswer =
  | { outcome: 'held' | 'repeat' }
  | { refusal: 'SKU_NOT_FOUND' | 'CUSTOMER_REQUIRED'; sku: string }
  | { refusal: 'FINISHED' | 'OTHER_CART' }
  | { refusal: 'INSUFFICIENT_STOCK'; sku: string; requested: number; available: number; locationId?: string }
  | {
      refusal: 'CUSTOMER_LIMIT_EXCEEDED';
      sku: string;
      limit: number;
      held: number;
      bought: number;
      requested: number;
    };

export class HoldLedger {
  /** `events: false` writes no events (only bench:outbox's baseline does, to measure what they cost). */
  constructor(
    readonly db: Pool,
    private readonly events = true,
  ) {}

  /**
   * Records a reservation whose hold Redis applied, as HELD with its lines; a repeat writes
   * nothing. A REJECTED one (an earlier run gave up while the stores were down) is held again:
   * the id stays usable after an outage. A finished one never holds again, also once Redis has
   * forgotten its tombstone (pruned after the retention, or lost with Redis's data), and another
   * cart under the id is a conflict: both RESERVATION_ID_CONFLICT, and the caller gives back
   * what Redis took.
   */
  async recordHold(hold: {
    reservationId: string;
    items: readonly CartLine[];
    customerId?: string;
    expiresAt: string;
    /** Where Redis holds each line, in line order (none: `default` whole). */
    allocations?: readonly (readonly Allocation[])[];
  }): Promise<void> {
    const { reservationId, items, customerId } = hold;
    const answer = (
      await this.db.query<{ answer: HoldAnswer }>('SELECT stockhold_hold($1, $2, $3, $4, $5, $6, $7) AS answer', [
        reservationId,
        customerId ?? null,
        hold.expiresAt,
        items.map((l) => l.sku),
        items.map((l) => l.quantity),
        this.events,
        hold.allocations ? JSON.stringify(hold.allocations) : null,
      ])
    ).rows[0]!.answer;
    if ('outcome' in answer) return;
    switch (answer.refusal) {
      case 'SKU_NOT_FOUND':
        throw skuNotFound(answer.sku);
      case 'FINISHED':
        throw new StockholdError(
          'RESERVATION_ID_CONFLICT',
          `reservation ${reservationId} already finished; it cannot hold again`,
          { reservationId },
        );
      case 'OTHER_CART':
        throw new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${reservationId} holds another cart`, {
          reservationId,
        });
      // PostgreSQL's last word on the promise: the hold must fit what it counts itself, whatever
      // Redis answered (Redis may have lost another buyer's hold).
      case 'INSUFFICIENT_STOCK': {
        const refusal = insufficientStock(answer.sku, answer.requested, answer.available);
        if (answer.locationId) refusal.details.locationId = answer.locationId;
        throw new LedgerRefusal(refusal);
      }
      case 'CUSTOMER_REQUIRED':
        throw new LedgerRefusal(customerIdRequired(answer.sku));
      case 'CUSTOMER_LIMIT_EXCEEDED':
        throw new LedgerRefusal(
          customerLimitExceeded(answer.sku, customerId!, answer.requested, {
            limit: answer.limit,
            held: answer.held,
            bought: answer.bought,
          }),
        );
    }
  }
}
