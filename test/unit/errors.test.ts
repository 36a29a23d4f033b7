import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { ServiceError, WorkflowUpdateFailedError } from '@temporalio/client';
import { isUnavailable, toContractError } from '../../src/api/errors';

/** An update handler that rethrows an activity's refusal: WorkflowUpdateFailedError → ActivityFailure → ApplicationFailure. */
function refusalThroughAnActivity(code: string): Error {
  const refusal = ApplicationFailure.create({
    type: code,
    message: `refused: ${code}`,
    details: [{ reservationId: 'r1' }],
    nonRetryable: true,
  });
  const activity = new ActivityFailure(
    'activity failed',
    'commitStock',
    '1',
    RetryState.NON_RETRYABLE_FAILURE,
    'worker',
    refusal,
  );
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
    const other = new WorkflowUpdateFailedError(
      'update failed',
      ApplicationFailure.create({ type: 'SomeBug', message: 'bug' }),
    );
    expect(toContractError(other)).toBeUndefined();
  });
});

/** A Temporal client call that failed with gRPC status `code`, as the client wraps it: ServiceError whose cause is the gRPC error. */
function temporalCallFailed(code: number, details: string): ServiceError {
  const grpc = Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
  return new ServiceError(`Temporal call failed: ${details}`, { cause: grpc });
}

describe('isUnavailable: only a Temporal that cannot answer now is an outage (503)', () => {
  it('a call Temporal refused (3 INVALID_ARGUMENT, e.g. a search attribute over its size limit) is not unavailable, so it is not answered 503', () => {
    const refused = temporalCallFailed(3, 'INVALID_ARGUMENT: search attribute InventorySkus exceeds size limit');
    expect(isUnavailable(refused)).toBe(false);
    expect(toContractError(refused)).toBeUndefined(); // a fault of ours: 500, not a retry-me 503
  });

  it.each([
    [14, 'UNAVAILABLE: no connection established'],
    [4, 'DEADLINE_EXCEEDED: deadline exceeded'],
  ])('a call that failed with gRPC code %i (%s) is unavailable: 503 UNAVAILABLE', (code, details) => {
    const failed = temporalCallFailed(code, details);
    expect(isUnavailable(failed)).toBe(true);
    expect(toContractError(failed)).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
  });

  it.each([
    'Unable to perform workflow execution update due to unexpected workflow task failure.',
    'Unable to perform workflow execution update due to Workflow Task in failed state.',
    'Unable to query workflow due to Workflow Task in failed state.',
  ])(
    'a call refused while the workflow task is retried (9 FAILED_PRECONDITION "%s", seen with workers killed and stores frozen) is unavailable: 503, the same call sent again works',
    (details) => {
      const refused = temporalCallFailed(9, details);
      expect(isUnavailable(refused)).toBe(true);
      expect(toContractError(refused)).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    },
  );

  it('any other FAILED_PRECONDITION (e.g. a workflow already completed) stays a refusal, not an outage', () => {
    const refused = temporalCallFailed(9, 'workflow execution already completed');
    expect(isUnavailable(refused)).toBe(false);
  });
});
