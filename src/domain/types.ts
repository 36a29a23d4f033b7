/** The shapes of the contract (docs/API.md): one name per concept, shared by every layer. */

/** One SKU and a number of its units: a line of a cart, of a commit or of a return. */
export interface CartLine {
  sku: string;
  quantity: number;
  /** A reservation line held at this location only (contract v3); absent: allocated through the channel. */
  locationId?: string;
}

/** Units of a line held (or taken) at one location, in the order they were taken (contract v3). */
export interface Allocation {
  locationId: string;
  quantity: number;
}

/** An allocation of a reservation line, with the units of it sold. */
export interface LineAllocation extends Allocation {
  committedQuantity: number;
}

export const RESERVATION_STATUSES = ['PENDING', 'HELD', 'REJECTED', 'COMMITTED', 'CANCELLED', 'EXPIRED'] as const;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];
/** Statuses a reservation never leaves. */
export const FINAL_STATUSES: readonly ReservationStatus[] = ['REJECTED', 'COMMITTED', 'CANCELLED', 'EXPIRED'];
/** How a hold ends without a sale. */
export type ReleaseStatus = 'CANCELLED' | 'EXPIRED' | 'REJECTED';

/** A line of a reservation view: held, sold (committed) and given back after the sale (returned). */
export interface ReservationLine {
  sku: string;
  quantity: number;
  committedQuantity: number;
  returnedQuantity: number;
  /** Where the line's units are held or were taken from (contract v3), first taken first. */
  allocations?: LineAllocation[];
}

/** The reservation view. */
export interface ReservationView {
  reservationId: string;
  status: ReservationStatus;
  items: ReservationLine[];
  customerId: string | null;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
  workflowId: string;
}

/** A SKU's settings (PATCH /v1/skus/:sku); null when unset. */
export interface SkuSettings {
  lowStockThreshold: number | null;
  maxPerCustomer: number | null;
}

/** A SKU as PostgreSQL has it (its `skus` row): name, total, `reserved` (what its HELD reservations hold) and settings. */
export interface SkuRow extends SkuSettings {
  name: string;
  total: number;
  reserved: number;
}

/** The stock view: `available = total - reserved`, and the SKU's settings. */
export interface StockView extends SkuSettings {
  sku: string;
  name: string;
  total: number;
  reserved: number;
  available: number;
  /** Read through a channel (`?channel=`): the channel's locations where the SKU has a level. */
  locations?: LocationLevel[];
}

/** A SKU's figures at one location (contract v3, "Locations"); `available` is `max(0, total - reserved)`. */
export interface LocationLevel {
  locationId: string;
  total: number;
  reserved: number;
  available: number;
}

export const MOVEMENT_KINDS = [
  'initial',
  'restock',
  'adjustment',
  'sale',
  'return',
  'transfer_out',
  'transfer_in',
] as const;
export type MovementKind = (typeof MOVEMENT_KINDS)[number];

/** One row of a SKU's ledger. */
export interface Movement {
  id: string;
  kind: MovementKind;
  delta: number;
  reservationId?: string;
  reason?: string;
  at: string;
  /** Where the units moved (contract v3). */
  locationId?: string;
  /** The transfer a `transfer_out`/`transfer_in` pair belongs to. */
  transferId?: string;
}

export interface StockHold {
  reservationId: string;
  quantity: number;
  /** The reservation's deadline, when PostgreSQL knows the reservation. */
  expiresAt: string | null;
  /** Where its units are held (contract v3). */
  allocations?: Allocation[];
}

/** A place where units are counted (contract v3, "Locations"). */
export interface Location {
  locationId: string;
  name: string;
  createdAt: string;
}

/** The location every deployment has, and the channel that exists unless replaced (contract v3). */
export const DEFAULT_LOCATION = 'default';
export const DEFAULT_CHANNEL = 'default';

/** How a channel orders its locations when a line is allocated (contract v3, "Channels and allocation"). */
export const ALLOCATION_STRATEGIES = ['priority', 'most-available'] as const;
export type AllocationStrategy = (typeof ALLOCATION_STRATEGIES)[number];

/** How one storefront sees stock: an ordered list of locations and a strategy. */
export interface Channel {
  channel: string;
  locations: string[];
  strategy: AllocationStrategy;
}

/** One part of a bundle: a stocked SKU and how many units of it one bundle takes. */
export interface BundleComponent {
  sku: string;
  quantity: number;
}

/** A bundle (contract v3, "Bundles"): a SKU made of other SKUs, with no stock of its own. */
export interface Bundle {
  sku: string;
  name: string;
  /** In the order the admin gave them (1..20, distinct stocked SKUs). */
  components: BundleComponent[];
}

/**
 * A bundle's stock view (`GET /v1/skus/:bundle`): `available` is the least, over its components,
 * of `floor(available / quantity)`, each component's `available` read as its stock view's (through
 * the same channel).
 */
export interface BundleView {
  sku: string;
  name: string;
  bundle: true;
  available: number;
  components: (BundleComponent & { available: number })[];
}

/** What a return gave back, per line. */
export interface ReturnResult {
  reservationId: string;
  items: { sku: string; returnedQuantity: number }[];
}

const NO_SETTINGS: SkuSettings = { lowStockThreshold: null, maxPerCustomer: null };

export function stockView(
  sku: string,
  name: string,
  total: number,
  reserved: number,
  settings: SkuSettings = NO_SETTINGS,
): StockView {
  return {
    sku,
    name,
    total,
    reserved,
    available: total - reserved,
    lowStockThreshold: settings.lowStockThreshold,
    maxPerCustomer: settings.maxPerCustomer,
  };
}

/** Temporal's workflow id of a reservation. */
export const workflowIdOf = (reservationId: string): string => `reservation-${reservationId}`;
