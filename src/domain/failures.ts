/**
 * A refusal on its way through Temporal and back, in one place: the activities turn a
 * StockholdError into an ApplicationFailure typed with the contract's code (`toFailure`), the
 * workflow finds that failure behind an activity failure (`refusalOf`) and rethrows it to the
 * caller of an update (`failure`), and the API turns whatever Temporal hands back into the
 * StockholdError it answers with (`fromFailure`). Workflow-safe: no Node built-ins, no zod.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { BUSINESS_CODES, isErrorCode, StockholdError, type ErrorCode } from './errors';

/** A refusal the caller receives with its contract code; never retried. */
export function failure(
  code: ErrorCode | string,
  message: string,
  details: Record<string, unknown> = {},
): ApplicationFailure {
  return ApplicationFailure.create({ type: code, message, details: [details], nonRetryable: true });
}

/** A StockholdError as the failure that carries it through Temporal. */
export function toFailure(err: StockholdError): ApplicationFailure {
  return failure(err.code, err.message, err.details);
}

/** The business refusal behind an activity failure, if it is one (a store outage is not). */
export function refusalOf(err: unknown): ApplicationFailure | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type && (BUSINESS_CODES as readonly string[]).includes(cause.type))
    return cause;
  return undefined;
}

/** A failure's first details, as the contract's `details` object ({} when it carries none). */
export function detailsOf(failed: ApplicationFailure): Record<string, unknown> {
  const details = failed.details?.[0];
  return details && typeof details === 'object' ? (details as Record<string, unknown>) : {};
}

/**
 * The refusal a Temporal failure carries, however deep: an update handler rethrowing an activity's
 * refusal arrives as WorkflowUpdateFailedError → ActivityFailure → ApplicationFailure, whose type
 * is the contract's code.
 */
export function fromFailure(err: unknown): StockholdError | undefined {
  for (let cause: unknown = err, depth = 0; cause instanceof Error && depth < 10; cause = cause.cause, depth++) {
    if (cause instanceof ApplicationFailure && isErrorCode(cause.type))
      return new StockholdError(cause.type, cause.message, detailsOf(cause));
  }
  return undefined;
}
