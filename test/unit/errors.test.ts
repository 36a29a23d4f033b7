import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { toContractError } from '../../src/api/errors';

/** An update handler that rethrows an activity's refusal: WorkflowUpdateFailedError → ActivityFailure → ApplicationFailure. */
function refusalThroughAnActivity(code: string): Error {
  const refusal = ApplicationFailure.create({ type: code, message: `refused: ${code}`, details: [{ reservationId: 'r1' }], nonRetryable: true });
  const activity = new ActivityFailure('activity failed', 'commitStock', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', refusal);
  return new WorkflowUpdateFailedError('update failed', activity);
}

describe('toContractError', () => {
  it('finds the contract code of a refusal two causes deep (update → activity → refusal), not a 500', () => {
    const error = toContractError(refusalThroughAnActivity('RESERVATION_EXPIRED'));
    expect(error).toMatchObject({ code: 'RESERVATION_EXPIRED', status: 409, details: { reservationId: 'r1' } });
  });

  it('leaves an error that merely says "not found" to the generic handler (no invented 404)', () => {
    expect(toContractError(new Error('query handler not found for getReservation'))).toBeUndefined();
  });

  it('ignores failure types that are not contract codes', () => {
    const other = new WorkflowUpdateFailedError('update failed', ApplicationFailure.create({ type: 'SomeBug', message: 'bug' }));
    expect(toContractError(other)).toBeUndefined();
  });
});
