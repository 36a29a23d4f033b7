/**
 * The Temporal contract of a reservation (docs/API.md, "Temporal contract"): names of the workflow,
 * its signals, updates, query and search attributes, and the shapes they carry. The workflow, the
 * API and the payment-service example all import this one module, so names cannot drift.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CartLine, ReservationView } from '../domain/types';

export { workflowIdOf } from '../domain/types';

export const DEFAULT_TASK_QUEUE = 'inventory-reservations';
export const WORKFLOW_TYPE = 'reservationWorkflow';

export interface ReservationInput {
  reservationId: string;
  items: CartLine[];
  ttlSeconds: number;
  /** Upper bound for `extend` (RESERVATION_MAX_TTL_SECONDS of whoever started it). */
  maxTtlSeconds: number;
  customerId?: string;
  /** Hash of the creating request's body: a repeat with another body is RESERVATION_ID_CONFLICT. */
  requestHash: string;
  /** Token of the caller that started the workflow: tells that caller "created" (201) from a repeat (200). */
  startToken: string;
  /** The channel the cart is held through (contract v3); absent: `default`. */
  channel?: string;
}

export interface AwaitHoldArgs {
  requestHash: string;
  startToken: string;
}

export interface HoldAnswer {
  created: boolean;
  reservation: ReservationView;
}

export interface CommitArgs {
  paymentId?: string;
  items?: CartLine[];
}

export interface CancelArgs {
  reason?: string;
}

export interface ExtendArgs {
  ttlSeconds: number;
}

export interface PaymentSucceededArgs {
  paymentId: string;
  items?: CartLine[];
}

export interface PaymentFailedArgs {
  paymentId?: string;
  reason: string;
}

/** Internal update the API sends with the start (update-with-start): answers once the hold is decided. */
export const awaitHoldUpdate = defineUpdate<HoldAnswer, [AwaitHoldArgs]>('awaitHold');
export const commitUpdate = defineUpdate<ReservationView, [CommitArgs]>('commit');
export const cancelUpdate = defineUpdate<ReservationView, [CancelArgs]>('cancel');
export const extendUpdate = defineUpdate<ReservationView, [ExtendArgs]>('extend');
export const paymentSucceededSignal = defineSignal<[PaymentSucceededArgs]>('paymentSucceeded');
export const paymentFailedSignal = defineSignal<[PaymentFailedArgs]>('paymentFailed');
export const getReservationQuery = defineQuery<ReservationView>('getReservation');

export const searchAttributes = {
  status: defineSearchAttributeKey('ReservationStatus', SearchAttributeType.KEYWORD),
  skus: defineSearchAttributeKey('InventorySkus', SearchAttributeType.KEYWORD_LIST),
  expiresAt: defineSearchAttributeKey('ReservationExpiresAt', SearchAttributeType.DATETIME),
  customerId: defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD),
  /** Contract v3: the channel a reservation names (set at its start; absent for `default`). */
  salesChannel: defineSearchAttributeKey('SalesChannel', SearchAttributeType.KEYWORD),
};
export const SEARCH_ATTRIBUTE_KEYS = Object.values(searchAttributes);

/** Temporal refuses a search attribute value over 2 KB (its default `limit.searchAttributeValueSize`). */
const SEARCH_VALUE_BYTES = 2_048 - 48;

/**
 * The cart's SKUs as the InventorySkus search attribute holds them: all of them, unless a long
 * cart (up to 50 SKUs of 64 characters) would exceed Temporal's size limit; then the first ones
 * that fit (the Web UI filter finds the reservation by those).
 */
export function searchableSkus(skus: readonly string[]): string[] {
  const kept: string[] = [];
  let bytes = 2; // []
  for (const sku of skus) {
    bytes += sku.length + 3; // "sku",  (SKUs are ASCII)
    if (bytes > SEARCH_VALUE_BYTES) break;
    kept.push(sku);
  }
  return kept;
}
