import { ApplicationFailure, log } from '@temporalio/activity';
import { StockholdError } from '../domain/errors';
import type { CartLine, ReleaseStatus, ReservationLine } from '../domain/types';
import type { HoldInput, StockStore } from '../stock';

/** Runs a stock call; business refusals become non-retryable failures typed with the contract's code. */
async function refusalsAsFailures<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof StockholdError && err.code !== 'UNAVAILABLE') {
      throw ApplicationFailure.create({ type: err.code, message: err.message, details: [err.details], nonRetryable: true });
    }
    throw err; // infrastructure trouble: Temporal retries with backoff
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
    async holdStock(input: HoldInput): Promise<{ alreadyHeld: boolean }> {
      return refusalsAsFailures(() => stock.hold(input));
    },

    /** Sale rows and totals in PostgreSQL, then Redis; returns what each line sold. */
    async commitStock(input: { reservationId: string; items?: CartLine[]; paymentId?: string }): Promise<ReservationLine[]> {
      const { lines, redisBehind } = await refusalsAsFailures(() => stock.commit(input.reservationId, input.items, input.paymentId));
      if (redisBehind) {
        log.warn('sale recorded in PostgreSQL, but Redis had no hold to turn into it', { reservationId: input.reservationId, ...redisBehind });
      }
      return lines;
    },

    /** Final status in PostgreSQL, then the hold given back in Redis. */
    async releaseStock(input: { reservationId: string; skus: string[]; status: ReleaseStatus; reason?: string }): Promise<number> {
      const { units } = await refusalsAsFailures(() => stock.release(input.reservationId, input.skus, input.status, input.reason));
      return units;
    },

    /** The moved deadline in PostgreSQL (the workflow's timer is the one that counts). */
    async extendReservation(input: { reservationId: string; expiresAt: string }): Promise<void> {
      await refusalsAsFailures(() => stock.extend(input.reservationId, input.expiresAt));
    },
  };
}

export type ReservationActivities = ReturnType<typeof createActivities>;
