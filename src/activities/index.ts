/**
 * The reservation's activities (hold, commit, release, extend): thin wrappers over the stock module,
 * made by a factory so the worker passes real clients and tests theirs, each classifying what goes
 * wrong (a refusal, a permanent error, or a transient one Temporal retries).
 */
import { StockholdError } from '../domain/errors';
import { failure, toFailure } from '../domain/failures';
import type { Allocation, CartLine, ReleaseStatus, ReservationLine } from '../domain/types';
import type { HoldInput, StockStore } from '../stock';

/**
 * PostgreSQL error classes that no retry can change: data exceptions (22: a value it cannot
 * store), integrity violations (23), syntax or access errors (42), configuration (F0), internal (XX).
 * Connection and resource classes (08, 53, 57, 58) are transient.
 */
const PERMANENT_SQLSTATE = /^(22|23|42|F0|XX)/;

/**
 * Runs a stock call and classifies what goes wrong: a business refusal becomes a non-retryable
 * failure typed with the contract's code; an error that will not go away (a value PostgreSQL
 * refuses) a non-retryable INTERNAL; anything else (a store down, Redis not rebuilt yet) is
 * transient and Temporal retries it with backoff.
 */
async function classified<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof StockholdError && err.code !== 'UNAVAILABLE') {
      throw toFailure(err);
    }
    const sqlstate = (err as { code?: unknown } | null)?.code;
    if (typeof sqlstate === 'string' && PERMANENT_SQLSTATE.test(sqlstate)) {
      throw failure('INTERNAL', `PostgreSQL refused the change (${sqlstate}): ${(err as Error).message}`);
    }
    throw err;
  }
}

/**
 * The reservation activities: thin wrappers over the stock module, made by a factory so the
 * worker passes real clients and tests pass theirs. Each is idempotent by reservation id (the
 * stock module and the Lua scripts make a repeat a no-op), since Temporal runs them at least once.
 */
export function createActivities(stock: StockStore) {
  return {
    /** Redis Lua hold of every line (the decision), then the reservation row in PostgreSQL. */
    async holdStock(input: HoldInput): Promise<{ alreadyHeld: boolean; allocations?: (Allocation[] | null)[] }> {
      return classified(() => stock.hold({ ...input, run: input.run ?? '' }));
    },

    /** Sale rows and totals in PostgreSQL, then Redis; returns what each line sold. */
    async commitStock(input: {
      reservationId: string;
      items?: CartLine[];
      paymentId?: string;
    }): Promise<ReservationLine[]> {
      const { items } = await classified(async () => {
        try {
          return await stock.commit(input.reservationId, input.items, input.paymentId);
        } catch (err) {
          // PostgreSQL refused the sale for want of stock: only after a store lost a hold. The
          // workflow logs it and cancels the reservation; here it is counted (stockhold_sales_refused_total).
          if (err instanceof StockholdError && err.code === 'INSUFFICIENT_STOCK')
            await stock.drift.count('refused_sale').catch(() => undefined);
          throw err;
        }
      });
      return items;
    },

    /**
     * Final status in PostgreSQL, then the hold given back in Redis: the units released; or, when
     * PostgreSQL has the reservation sold already, what each line sold (`committed`).
     */
    async releaseStock(input: {
      reservationId: string;
      skus: string[];
      status: ReleaseStatus;
      reason?: string;
      run?: string;
    }): Promise<number | { committed: ReservationLine[] }> {
      const released = await classified(() =>
        stock.release(input.reservationId, input.skus, input.status, input.reason, input.run),
      );
      return released.committed ? { committed: released.committed } : released.units;
    },

    /** The moved deadline in PostgreSQL (the workflow's timer is the one that counts). */
    async extendReservation(input: { reservationId: string; expiresAt: string }): Promise<void> {
      await classified(() => stock.extend(input.reservationId, input.expiresAt));
    },
  };
}

export type ReservationActivities = ReturnType<typeof createActivities>;
