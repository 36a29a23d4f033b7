/**
 * What a failure means to a client: a store's or Temporal's outage is 503 UNAVAILABLE, a refusal
 * its contract code (src/domain/failures.ts), anything else a fault of the service (500).
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { StockholdError, unavailable } from '../domain/errors';
import { fromFailure } from '../domain/failures';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** True for failures of a backing store's connection rather than of the request. */
export function isUnavailable(err: unknown): boolean {
  // Shape, not `instanceof Error`: errors from Node's own modules may come from another realm.
  if (typeof err !== 'object' || err === null || typeof (err as { message?: unknown }).message !== 'string')
    return false;
  const e = err as Error & { code?: unknown; name: string };
  if (
    typeof e.code === 'string' &&
    (CONNECTION_CODES.has(e.code) || e.code.startsWith('08') || e.code === '57P01' || e.code === '57P03')
  )
    return true;
  if (
    e.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|connect ECONNREFUSED|Connection terminated|timeout exceeded when trying to connect|Command timed out|Query read timeout|canceling statement due to statement timeout|is not queryable/i.test(
      e.message,
    )
  ) {
    return true;
  }
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return true;
  if (typeof e.code === 'number' && 'metadata' in e) return isTransientGrpc(e as Error & { code: number }); // a bare gRPC error
  // A Temporal call that failed for the server's state (down, overloaded, timed out) is an
  // outage; one it refused (INVALID_ARGUMENT, a limit...) is a fault of ours, not a 503.
  if (err instanceof ServiceError && err.cause instanceof Error)
    return isTransientGrpc(err.cause as Error & { code?: unknown });
  return false;
}

function isTransientGrpc(grpc: Error & { code?: unknown; details?: unknown }): boolean {
  if (typeof grpc.code !== 'number') return false;
  if (TRANSIENT_GRPC.has(grpc.code)) return true;
  // FAILED_PRECONDITION is a refusal, but not for the workflow task's state: while a workflow task
  // is being retried after a failure or a timeout (a worker killed mid-task, a store frozen under
  // its local activities), the server refuses queries and updates ("Workflow Task in failed state")
  // and aborts an update in flight ("unexpected workflow task failure"). Nothing was accepted, the
  // task is retried, and the same call sent again works: the contract's 503.
  const text = typeof grpc.details === 'string' ? grpc.details : grpc.message;
  return grpc.code === FAILED_PRECONDITION && WORKFLOW_TASK_RETRYING.test(text);
}

const FAILED_PRECONDITION = 9;
const WORKFLOW_TASK_RETRYING = /due to unexpected workflow task failure|due to Workflow Task in failed state/i;

/** gRPC status codes of a server that cannot answer now: CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE. */
const TRANSIENT_GRPC = new Set([1, 4, 8, 10, 14]);

/** Maps any error to the contract's error (or undefined for a genuine server fault). */
export function toContractError(err: unknown): StockholdError | undefined {
  if (err instanceof StockholdError) return err;
  const temporal = fromFailure(err);
  if (temporal) return temporal;
  if (err instanceof WorkflowNotFoundError) return new StockholdError('RESERVATION_NOT_FOUND', 'reservation not found');
  if (err instanceof WorkflowExecutionAlreadyStartedError)
    return new StockholdError('RESERVATION_ID_CONFLICT', err.message);
  if (isUnavailable(err)) return unavailable('a backing store is unavailable; retry shortly');
  return undefined;
}
