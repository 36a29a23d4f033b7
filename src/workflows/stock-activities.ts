/**
 * The stock activities as the reservation workflow calls them, with their timeouts and retries,
 * and the patch ids of changes to how they are called (replay keeps older runs on their path).
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/common';
import type { ReservationActivities } from '../activities';
import { BUSINESS_CODES } from '../domain/errors';

export const NON_RETRYABLE = [...BUSINESS_CODES];
// The hold is short and on the answer's critical path: a local activity, a few quick attempts.
export const { holdStock } = proxyLocalActivities<ReservationActivities>({
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '50 ms', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
});

// Commit and release must eventually happen: retried with backoff, without limit.
const SETTLE_RETRY: RetryPolicy = {
  initialInterval: '200 ms',
  backoffCoefficient: 2,
  maximumInterval: '10 seconds',
  nonRetryableErrorTypes: NON_RETRYABLE,
};
export const { commitStock, releaseStock, extendReservation } = proxyActivities<ReservationActivities>({
  startToCloseTimeout: '10 seconds',
  retry: SETTLE_RETRY,
});
// The commit is on the HTTP answer's critical path: as a local activity it runs in the workflow
// task that received the update, saving a task round trip through the server. Same retries.
export const { commitStock: commitStockLocally } = proxyLocalActivities<ReservationActivities>({
  startToCloseTimeout: '10 seconds',
  retry: SETTLE_RETRY,
});
/** Runs started before this change commit through a regular activity; replay must keep that. */
export const COMMIT_AS_LOCAL_ACTIVITY = 'commit-as-local-activity';
/** Runs before this change retried a release that failed for good at once, in a loop. */
export const PAUSE_AFTER_FAILED_RELEASE = 'pause-after-failed-release';
/** Runs before this change left a reservation HELD when PostgreSQL refused its sale. */
export const CANCEL_ON_REFUSED_SALE = 'cancel-on-refused-sale';
