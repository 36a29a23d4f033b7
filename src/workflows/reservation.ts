/**
 * reservationWorkflow: one durable workflow per reservation (its states: reservation-state.ts).
 * This file only wires: the activities, the handlers (all registered before the first await),
 * the hold, and the wait for a commit, a cancel or the TTL. Deterministic code only: all I/O is
 * in activities.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  log,
  patched,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { CartLine, ReservationView } from '../domain/types';
import {
  CANCEL_ON_REFUSED_SALE,
  PAUSE_AFTER_FAILED_RELEASE,
  COMMIT_AS_LOCAL_ACTIVITY,
  commitStock,
  commitStockLocally,
  extendReservation,
  holdStock,
  releaseStock,
} from './stock-activities';
import { untilExpiry } from './expiry';
import {
  awaitHoldUpdate,
  cancelUpdate,
  commitUpdate,
  extendUpdate,
  getReservationQuery,
  paymentFailedSignal,
  paymentSucceededSignal,
  type ReservationInput,
} from './definitions';
import { FEWER_ACTIONS, ReservationState } from './reservation-state';
import { detailsOf, failure, refusalOf } from '../domain/failures';
import { commitItems, fieldOf, paymentId, reason, ttlSeconds } from './validators';

export async function reservationWorkflow(input: ReservationInput): Promise<ReservationView> {
  const { reservationId } = input;
  const state = new ReservationState(input);

  const commit = (items: CartLine[] | undefined, payment: string | undefined) =>
    state.settle(async () => {
      const args = { reservationId, items, paymentId: payment };
      try {
        state.sold(patched(COMMIT_AS_LOCAL_ACTIVITY) ? await commitStockLocally(args) : await commitStock(args));
      } catch (err) {
        // PostgreSQL has the last word: a sale it refuses for want of stock (only after a store
        // lost a hold) ends the reservation, CANCELLED with that reason, and the caller hears 409.
        const refused = refusalOf(err);
        if (refused?.type !== 'INSUFFICIENT_STOCK' || !patched(CANCEL_ON_REFUSED_SALE)) throw err;
        log.warn('sale refused by PostgreSQL: not enough stock; cancelling the reservation', {
          reservationId,
          refusal: refused.message,
        });
        await releaseStock({
          reservationId,
          skus: state.skus,
          status: 'CANCELLED',
          reason: `INSUFFICIENT_STOCK: ${refused.message}`,
        });
        state.become('CANCELLED');
        throw failure(refused.type, refused.message, detailsOf(refused));
      }
      state.become('COMMITTED');
    });

  // A release may find the reservation sold: its commit wrote PostgreSQL in a workflow task that
  // Temporal never recorded (its server killed meanwhile), so this run never learned of it. The
  // reservation is COMMITTED then, whatever ended the wait. (Runs recorded before this change never
  // got such an answer, so they replay unchanged.)
  const release = (final: 'CANCELLED' | 'EXPIRED', why?: string) =>
    state.settle(async () => {
      const released = await releaseStock({ reservationId, skus: state.skus, status: final, reason: why });
      if (typeof released === 'object' && released !== null && 'committed' in released) {
        log.warn('release found the reservation sold in PostgreSQL; it is COMMITTED', {
          reservationId,
          instead: final,
        });
        state.sold(released.committed);
        state.become('COMMITTED');
        return;
      }
      state.become(final);
    });

  // ------------------------------------------------------------------ handlers (before any await)
  // Arguments are read as `unknown`: a caller outside the API (another SDK, the CLI) may send none
  // or a malformed one, and a TypeError here would fail every workflow task.

  setHandler(getReservationQuery, () => state.view());

  setHandler(awaitHoldUpdate, async (args) => {
    if (fieldOf(args, 'requestHash') !== input.requestHash) {
      throw failure('RESERVATION_ID_CONFLICT', `reservation ${reservationId} exists with another body`, {
        reservationId,
      });
    }
    await condition(() => state.status !== 'PENDING');
    if (state.status === 'REJECTED' && state.rejection) throw state.rejection;
    return { created: fieldOf(args, 'startToken') === input.startToken, reservation: state.view() };
  });

  setHandler(
    commitUpdate,
    async (args) => {
      await condition(() => state.status !== 'PENDING');
      if (state.settleable)
        void commit(commitItems(fieldOf(args, 'items'), state.items), paymentId(fieldOf(args, 'paymentId'))).catch(
          () => undefined,
        );
      await state.settlement;
      if (state.status === 'COMMITTED') return state.view();
      throw state.notHeld();
    },
    {
      validator: (args) => {
        commitItems(fieldOf(args, 'items'), state.items);
        paymentId(fieldOf(args, 'paymentId'));
      },
    },
  );

  setHandler(
    cancelUpdate,
    async (args) => {
      await condition(() => state.status !== 'PENDING');
      if (state.settleable) void release('CANCELLED', reason(fieldOf(args, 'reason'))).catch(() => undefined);
      await state.settlement;
      if (state.status === 'COMMITTED') throw state.notHeld();
      return state.view();
    },
    { validator: (args) => void reason(fieldOf(args, 'reason')) },
  );

  setHandler(
    extendUpdate,
    async (args) => {
      await condition(() => state.status !== 'PENDING');
      if (!state.settleable) {
        await state.settlement;
        throw state.notHeld();
      }
      // Move the deadline first, so the timer loop never expires a reservation being extended.
      state.extend(ttlSeconds(fieldOf(args, 'ttlSeconds'), input.maxTtlSeconds));
      state.become('HELD');
      await extendReservation({ reservationId, expiresAt: new Date(state.expiresAtMs).toISOString() });
      return state.view();
    },
    { validator: (args) => void ttlSeconds(fieldOf(args, 'ttlSeconds'), input.maxTtlSeconds) },
  );

  // Signals cannot answer: a payload that does not fit is logged and ignored.
  setHandler(paymentSucceededSignal, async (args) => {
    await condition(() => state.status !== 'PENDING');
    if (!state.settleable)
      return log.info('paymentSucceeded ignored: reservation already settling or final', { status: state.status });
    let items: CartLine[] | undefined;
    let payment: string | undefined;
    try {
      items = commitItems(fieldOf(args, 'items'), state.items);
      payment = paymentId(fieldOf(args, 'paymentId'), true);
    } catch (err) {
      return log.warn('paymentSucceeded ignored: its payload does not fit the hold', { error: String(err) });
    }
    await commit(items, payment).catch((err: unknown) =>
      log.error('commit after paymentSucceeded failed', { error: String(err) }),
    );
  });

  setHandler(paymentFailedSignal, async (args) => {
    await condition(() => state.status !== 'PENDING');
    if (!state.settleable)
      return log.info('paymentFailed ignored: reservation already settling or final', { status: state.status });
    let why = 'payment failed';
    try {
      why = reason(fieldOf(args, 'reason')) ?? why;
    } catch (err) {
      log.warn('paymentFailed: its reason is not valid text; cancelling with the default reason', {
        error: String(err),
      });
    }
    await release('CANCELLED', why).catch((err: unknown) =>
      log.error('release after paymentFailed failed', { error: String(err) }),
    );
  });

  // ------------------------------------------------------------------ the hold

  // Asked before the hold, so that its marker goes into the hold's workflow task, beside the hold's
  // own local-activity marker (Temporal Cloud bills a task's markers as one Action).
  const fewerActions = patched(FEWER_ACTIONS);
  state.onlyChangedAttributes = fewerActions;

  try {
    const run = workflowInfo().runId;
    // Contract v3: the channel and pinned lines are data of the hold (no new command); where the
    // hold put each line comes back in its result (absent in histories from before it).
    const held = await holdStock({
      reservationId,
      run,
      items: input.items,
      customerId: input.customerId,
      expiresAt: new Date(state.expiresAtMs).toISOString(),
      ...(input.channel !== undefined ? { channel: input.channel } : {}),
    });
    state.allocated(held?.allocations);
    state.become('HELD');
  } catch (err) {
    const business = refusalOf(err);
    if (business) {
      const details = detailsOf(business);
      state.rejection = failure(business.type!, business.message, details);
      // Kept in the memo, so a repeat of this request after the run closed gets the same refusal.
      upsertMemo({ rejection: { code: business.type, message: business.message, details } });
      state.become('REJECTED');
      await condition(allHandlersFinished);
      return state.view();
    }
    // The stores were unreachable: the hold may or may not have applied, so give back whatever it
    // may have held (retried until it is done) and fence off this run's late attempts only, then
    // fail the run as UNAVAILABLE: a failed run's id may start again, so the client's retry works.
    log.warn('hold failed; releasing whatever it may have held', { error: String(err) });
    await releaseStock({
      reservationId,
      skus: state.skus,
      status: 'REJECTED',
      reason: 'hold failed: stores unavailable',
      run: workflowInfo().runId,
    });
    state.rejection = failure('UNAVAILABLE', 'the stock stores are unavailable; retry shortly');
    state.become('REJECTED');
    await condition(allHandlersFinished);
    throw ApplicationFailure.create({
      type: 'UNAVAILABLE',
      message: 'hold failed: stores unavailable',
      nonRetryable: true,
    });
  }

  // ------------------------------------------------------------------ wait: commit, cancel or TTL

  for (;;) {
    if (state.settlement) await state.settlement.catch(() => undefined);
    if (state.status !== 'HELD') break;
    const expired = await untilExpiry(
      fewerActions ? keptTimer(state) : () => state.expiresAtMs,
      () => state.settlement !== undefined,
    );
    // The kept timer fired, but an extend has moved the deadline past it: wait for the rest.
    if (expired && fewerActions && state.expiresAtMs > Date.now()) continue;
    if (expired) {
      // A release that failed for good (it is retried with backoff until then) is tried again
      // after a pause, not at once: the reconciler releases the hold meanwhile if it must.
      const released = await release('EXPIRED').then(
        () => true,
        () => false,
      );
      if (!released && patched(PAUSE_AFTER_FAILED_RELEASE)) await sleep('1 minute');
    }
  }
  await condition(allHandlersFinished);
  return state.view();
}

/**
 * The deadline the TTL timer waits for, when only an earlier deadline restarts it: an extend that
 * moves the deadline later keeps the running timer (a new one is one more billable Action), and
 * the wait loop waits for the rest once it fires. Most reservations are settled before then.
 */
function keptTimer(state: ReservationState): () => number {
  let at = state.expiresAtMs;
  return () => (at = Math.min(at, state.expiresAtMs));
}
