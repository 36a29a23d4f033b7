/**
 * StockStore: the stock module's façade. The reservations' steps (hold, release, commit, extend)
 * are here, on top of the admin writes (./admin.ts) and the reads (./reads.ts), keeping the order
 * of writes of docs/DESIGN.md between PostgreSQL and Redis.
 */
import { type StockholdError } from '../domain/errors';
import {
  DEFAULT_CHANNEL,
  DEFAULT_LOCATION,
  type Allocation,
  type CartLine,
  type ReleaseStatus,
  type ReservationLine,
} from '../domain/types';
import { LedgerRefusal } from './ledger';
import { StockAdmin } from './admin';

export type { StockStoreOptions } from './reads';

export interface HoldInput {
  reservationId: string;
  /** The workflow run holding: a run that gave up is fenced off, a new run of the same id is not. */
  run?: string;
  items: CartLine[];
  customerId?: string;
  expiresAt: string;
  /** The channel the cart is held through (contract v3); absent: every level of each SKU. */
  channel?: string;
}

/** Whether a line's allocation is the v2 one: all of it at `default`. */
export const atDefaultOnly = (allocations: readonly Allocation[]): boolean =>
  allocations.length === 0 || (allocations.length === 1 && allocations[0]!.locationId === DEFAULT_LOCATION);

/** The unexplained-drift kind (reconciler_counts `unexplained:refused_hold`) of a hold PostgreSQL refused after Redis applied it. */
export const REFUSED_HOLD = 'refused_hold';

/**
 * The stock module's façade, called by the API and the activities with validated input (the
 * rules are in src/domain; HTTP bodies are checked in src/api, Temporal messages in src/workflows):
 * the reads (./reads.ts) and every write. PostgreSQL (the ledger) is the source of truth; Redis
 * (the counters) holds the hot figures. A hold goes to Redis first (it absorbs the storm), then to
 * PostgreSQL, which has the last word. Other durable changes go to PostgreSQL first, then Redis,
 * except a negative adjustment, whose Redis check runs inside the PostgreSQL transaction so that it
 * can be refused. Redis left behind by a failure is caught up by the movement's retry or by the
 * reconciler (src/reconciler/).
 */
export class StockStore extends StockAdmin {
  // ---------------------------------------------------------------- reservations (activities)

  /**
   * Holds every line or none (Redis decides), then records the reservation as HELD in
   * PostgreSQL. Idempotent by reservation id: a retry finds the hold and writes nothing new.
   */
  async hold(input: HoldInput): Promise<{ alreadyHeld: boolean; allocations?: (Allocation[] | null)[] }> {
    let held: Awaited<ReturnType<typeof this.counters.hold>>;
    try {
      const channel = await this.channelSpec(input.channel ?? DEFAULT_CHANNEL);
      held = await this.counters.hold(
        input.reservationId,
        input.run ?? '',
        input.items,
        input.customerId ?? '',
        channel,
      );
    } catch (err) {
      throw await this.explainMissing(err);
    }
    try {
      await this.ledger.holds.recordHold({
        reservationId: input.reservationId,
        items: input.items,
        customerId: input.customerId,
        expiresAt: input.expiresAt,
        allocations: held.allocations,
      });
    } catch (err) {
      if (err instanceof LedgerRefusal) throw await this.refusedByLedger(input, err);
      // Another cart under an id already recorded (on a cluster the scripts see one slot group
      // at a time): give back what this call held, keep the recorded reservation's holds.
      if ((err as StockholdError).code === 'RESERVATION_ID_CONFLICT' && held.newlyHeld.length > 0) {
        await this.counters.release(
          input.reservationId,
          held.newlyHeld.map((l) => l.sku),
          '',
        );
      }
      throw err;
    }
    // Contract v3's allocations only where a line is not simply all at `default` (a deployment
    // that never names a location sees v2's reservations).
    const shown = held.allocations.map((a) => (atDefaultOnly(a) ? null : a));
    return { alreadyHeld: held.alreadyHeld, ...(shown.some((a) => a !== null) ? { allocations: shown } : {}) };
  }

  /**
   * PostgreSQL refused a hold Redis had applied: Redis lost units another reservation holds (a
   * failover to a lagging replica), so the buyer is refused, never promised units already
   * promised. Gives back every line Redis holds for this run (fencing off its late attempts,
   * as a run that gave up is), reports the disagreement as drift nothing in flight explains (the
   * reconciler puts the lost hold back), and returns the refusal the buyer hears.
   */
  private async refusedByLedger(input: HoldInput, err: LedgerRefusal): Promise<StockholdError> {
    const { reservationId, items } = input;
    await this.counters.release(
      reservationId,
      items.map((l) => l.sku),
      `${reservationId}@${input.run ?? ''}`,
    );
    this.alert('PostgreSQL refused a hold Redis applied (Redis lost a hold): refused, and given back in Redis', {
      reservationId,
      refusal: err.refusal.code,
      details: err.refusal.details,
    });
    await this.drift.count(`unexplained:${REFUSED_HOLD}`).catch(() => undefined);
    return err.refusal;
  }

  /**
   * Records a reservation's final status, then gives back its hold. Idempotent. A REJECTED one
   * (its run gave up) fences off only that `run`, so the id can be used again.
   */
  async release(
    reservationId: string,
    skus: readonly string[],
    status: ReleaseStatus,
    reason?: string,
    run?: string,
  ): Promise<{ units: number; committed?: ReservationLine[] }> {
    const now = await this.ledger.reservations
      .recordRelease(reservationId, status, reason)
      .catch(async (err: { code?: string }) => {
        // A reason PostgreSQL cannot store must not keep the units held: release without it.
        if (typeof err?.code !== 'string' || !err.code.startsWith('22')) throw err;
        return this.ledger.reservations.recordRelease(reservationId, status);
      });
    // A sale got there first (a commit that wrote PostgreSQL in a workflow task Temporal never
    // recorded, its server killed meanwhile): the reservation is sold, not released. Its Redis step
    // is completed as a retried commit would, and the caller hears what was sold.
    if (now === 'COMMITTED') return { units: 0, committed: (await this.commit(reservationId)).items };
    return this.counters.release(
      reservationId,
      skus,
      status === 'REJECTED' ? `${reservationId}@${run ?? ''}` : reservationId,
    );
  }

  /**
   * Sells at most the held quantity of each line (all of it without `items`) and releases the
   * rest: the sale rows and totals in one PostgreSQL transaction first (refused with
   * INSUFFICIENT_STOCK if PostgreSQL's total cannot cover it), then Redis. Idempotent.
   */
  async commit(reservationId: string, items?: CartLine[], paymentId?: string): Promise<{ items: ReservationLine[] }> {
    const sale = await this.ledger.reservations.recordSale(reservationId, items, paymentId);
    await this.counters.commit(
      reservationId,
      sale.items.map((l) => ({ sku: l.sku, committedQuantity: l.committedQuantity, movements: l.sales })),
      sale.customerId ?? '',
    );
    return {
      items: sale.items.map(({ sales: _, allocations, ...line }) =>
        allocations && !atDefaultOnly(allocations) ? { ...line, allocations } : line,
      ),
    };
  }

  /** Moves a HELD reservation's deadline in PostgreSQL (the workflow's timer is the real one). */
  async extend(reservationId: string, expiresAt: string): Promise<void> {
    await this.ledger.reservations.recordExpiresAt(reservationId, expiresAt);
  }
}
