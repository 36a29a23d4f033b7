/**
 * The contract's error codes (../shared/API.md), with the HTTP status each maps to.
 * Every refusal in the domain is a StockholdError carrying one of these, so the API, the
 * activities and the workflow speak the same codes.
 */
export const ERROR_STATUS = {
  INVALID_REQUEST: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SKU_NOT_FOUND: 404,
  RESERVATION_NOT_FOUND: 404,
  SKU_EXISTS: 409,
  WOULD_OVERSELL: 409,
  INSUFFICIENT_STOCK: 409,
  RESERVATION_ID_CONFLICT: 409,
  RESERVATION_EXPIRED: 409,
  RESERVATION_CANCELLED: 409,
  RESERVATION_REJECTED: 409,
  RESERVATION_COMMITTED: 409,
  RESERVATION_NOT_COMMITTED: 409,
  RETURN_EXCEEDS_SALE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  QUANTITY_EXCEEDS_HOLD: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_STATUS, value);
}

/** A refusal with one of the contract's codes; `details` goes to the client as is. */
export class StockholdError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'StockholdError';
    this.status = ERROR_STATUS[code];
  }
}

/** A backing store (Redis, PostgreSQL, Temporal) is unreachable or not ready. */
export function unavailable(message: string, details: Record<string, unknown> = {}): StockholdError {
  return new StockholdError('UNAVAILABLE', message, details);
}
