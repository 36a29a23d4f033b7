/**
 * The contract's error codes with the HTTP status of each. Every refusal in the service is a
 * StockholdError carrying one of them (an ApplicationFailure of that type inside Temporal), so
 * the API, the workflow, the activities and the stock module speak the same codes.
 */
export const ERROR_STATUS = {
  INVALID_REQUEST: 400,
  LOCATION_NOT_IN_CHANNEL: 400,
  LOCATION_REQUIRED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SKU_NOT_FOUND: 404,
  RESERVATION_NOT_FOUND: 404,
  LOCATION_NOT_FOUND: 404,
  CHANNEL_NOT_FOUND: 404,
  SKU_EXISTS: 409,
  LOCATION_EXISTS: 409,
  WOULD_OVERSELL: 409,
  INSUFFICIENT_STOCK: 409,
  CUSTOMER_LIMIT_EXCEEDED: 409,
  WATCH_LIMIT_REACHED: 409,
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

/**
 * Every code but UNAVAILABLE is a refusal that a retry cannot change: an activity failing with one
 * is not retried, and the workflow hands it to the caller as is. UNAVAILABLE is the transient one.
 */
export const BUSINESS_CODES = (Object.keys(ERROR_STATUS) as ErrorCode[]).filter((code) => code !== 'UNAVAILABLE');

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_STATUS, value);
}

/** The code for acting on a reservation in `status` when it had to be HELD (RESERVATION_EXPIRED, …). */
export function notHeldCode(status: string): ErrorCode {
  const code = `RESERVATION_${status}`;
  return isErrorCode(code) ? code : 'RESERVATION_NOT_FOUND';
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

export function skuNotFound(sku: string): StockholdError {
  return new StockholdError('SKU_NOT_FOUND', `SKU ${sku} does not exist`, { sku });
}

/** A stock write or a hold that names a bundle (contract v3), which has no stock of its own. */
export function bundleHasNoStock(sku: string): StockholdError {
  return new StockholdError(
    'INVALID_REQUEST',
    `${sku} is a bundle: it has no stock of its own (its components do), and reservation lines of bundles are not built yet`,
    { sku, bundle: true },
  );
}

/** A reservation line pinned to a location its channel does not have. */
export function locationNotInChannel(locationId: string, channel: string, sku: string): StockholdError {
  return new StockholdError('LOCATION_NOT_IN_CHANNEL', `location ${locationId} is not one of channel ${channel}'s`, {
    locationId,
    channel,
    sku,
  });
}

/** A write that must name a location, on a SKU stocked at several. */
export function locationRequired(sku: string, locations: readonly string[]): StockholdError {
  return new StockholdError(
    'LOCATION_REQUIRED',
    `${sku} is stocked at ${locations.length} locations: name one (locationId)`,
    { sku, locations: [...locations] },
  );
}

export function locationNotFound(locationId: string): StockholdError {
  return new StockholdError('LOCATION_NOT_FOUND', `location ${locationId} does not exist`, { locationId });
}

export function channelNotFound(channel: string): StockholdError {
  return new StockholdError('CHANNEL_NOT_FOUND', `channel ${channel} does not exist`, { channel });
}

export function reservationNotFound(reservationId: string): StockholdError {
  return new StockholdError('RESERVATION_NOT_FOUND', `reservation ${reservationId} does not exist`, { reservationId });
}

export function insufficientStock(sku: string, requested: number, available: number): StockholdError {
  return new StockholdError('INSUFFICIENT_STOCK', `only ${available} of ${sku} available, ${requested} requested`, {
    sku,
    requested,
    available: Math.max(available, 0),
  });
}

/** What a customer holds and has bought of a limited SKU, against its limit. */
export interface CustomerCounts {
  limit: number;
  held: number;
  bought: number;
}

/** A hold refused because the customer would hold plus have bought more than the SKU's `maxPerCustomer`. */
export function customerLimitExceeded(
  sku: string,
  customerId: string,
  requested: number,
  counts: CustomerCounts,
): StockholdError {
  return new StockholdError(
    'CUSTOMER_LIMIT_EXCEEDED',
    `${sku} is limited to ${counts.limit} per customer; customer ${customerId} holds ${counts.held} and has bought ${counts.bought}, ${requested} requested`,
    { sku, customerId, limit: counts.limit, held: counts.held, bought: counts.bought, requested },
  );
}

/** A cart with a SKU that has a per-customer limit names no customer. */
export function customerIdRequired(sku: string): StockholdError {
  return new StockholdError('INVALID_REQUEST', `customerId: required, since ${sku} is limited per customer`, {
    field: 'customerId',
    sku,
  });
}

export function reservationNotHeld(reservationId: string, status: string): StockholdError {
  return new StockholdError(notHeldCode(status), `reservation ${reservationId} is ${status}`, {
    reservationId,
    status,
  });
}

export function quantityExceedsHold(sku: string, requested: number, held: number): StockholdError {
  return new StockholdError('QUANTITY_EXCEEDS_HOLD', `commit of ${requested} ${sku} exceeds the ${held} held`, {
    sku,
    requested,
    held,
  });
}

/** An adjustment refused because it would take `total` (before it: `total`) below the `reserved` units. */
/** A transfer asks for more units than are free (not reserved) at its `from` location. */
export function transferShort(sku: string, from: string, quantity: number, available: number): StockholdError {
  return new StockholdError(
    'WOULD_OVERSELL',
    `only ${Math.max(available, 0)} unreserved units of ${sku} at ${from}, ${quantity} to transfer`,
    { sku, locationId: from, requested: quantity, available: Math.max(available, 0) },
  );
}

export function wouldOversell(sku: string, total: number, reserved: number, delta: number): StockholdError {
  return new StockholdError(
    'WOULD_OVERSELL',
    `adjusting ${sku} by ${delta} would leave total ${total + delta} below reserved ${reserved}`,
    {
      sku,
      total,
      reserved,
      delta,
    },
  );
}
