/** The contract's limits (docs/API.md), in one place for the API, the workflow and the stock module. */

/** Units of one SKU on one reservation line. */
export const MAX_LINE_QUANTITY = 10_000;
/** Lines of one cart (distinct SKUs). */
export const MAX_LINES = 50;
/** Any stock figure (total, reserved, a restock, an adjustment's size): a PostgreSQL integer. */
export const MAX_STOCK = 2 ** 31 - 1;
/** A SKU's per-customer limit (`maxPerCustomer`): units one customer may hold plus have bought. */
export const MAX_PER_CUSTOMER = 10_000;
/** SKUs one availability read may ask for. */
export const MAX_AVAILABILITY_SKUS = 100;
/** Ledger rows one movements read may return, and the default. */
export const MAX_MOVEMENTS = 500;
export const DEFAULT_MOVEMENTS = 50;
/** Free text (a name, a reason) and identifiers a client chooses (a payment, a customer). */
export const MAX_TEXT_LENGTH = 500;
export const MAX_NAME_LENGTH = 500;
export const MAX_CLIENT_ID_LENGTH = 128;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
/** TTL of a reservation when the request names none, and the largest one allowed (the service may lower it). */
export const DEFAULT_TTL_SECONDS = 600;
export const MAX_TTL_SECONDS = 86_400;

/** A channel lists 1 to this many locations (contract v3); a SKU is created at up to this many. */
export const MAX_CHANNEL_LOCATIONS = 50;
/** A bundle has 1 to this many components (contract v3, "Bundles"), each 1..MAX_LINE_QUANTITY units. */
export const MAX_BUNDLE_COMPONENTS = 20;
export const SKU_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
export const RESERVATION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
