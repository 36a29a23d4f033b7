/**
 * The events of the contract (docs/API.md, Events): `{"id", "type", "createdAt", "data"}`, written
 * to the outbox (`events`, src/stock/outbox.ts) in the transaction of the change they report. No I/O.
 */
import type { Movement, ReservationView, StockView } from './types';

export const STOCK_EVENT_TYPES = ['stock.changed', 'stock.low', 'stock.sold_out', 'stock.back_in_stock'] as const;
export const RESERVATION_EVENT_TYPES = [
  'reservation.held',
  'reservation.committed',
  'reservation.cancelled',
  'reservation.expired',
] as const;
export const EVENT_TYPES = [...STOCK_EVENT_TYPES, ...RESERVATION_EVENT_TYPES] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export type ThresholdEventType = Exclude<(typeof STOCK_EVENT_TYPES)[number], 'stock.changed'>;
export type ReservationEventType = (typeof RESERVATION_EVENT_TYPES)[number];

/** `stock.changed`'s data: the stock view after the change, and the ledger movement that made it. */
export type StockChangedData = StockView & { movement: Movement };

/** The data of each event type. */
export interface EventData {
  'stock.changed': StockChangedData;
  'stock.low': StockView;
  'stock.sold_out': StockView;
  'stock.back_in_stock': StockView;
  'reservation.held': ReservationView;
  'reservation.committed': ReservationView;
  'reservation.cancelled': ReservationView;
  'reservation.expired': ReservationView;
}

/** An event as the outbox is given it: its type, its data and the SKUs it belongs to. */
export type NewEvent = { [T in EventType]: { type: T; skus: string[]; data: EventData[T] } }[EventType];

/** An event as committed: the contract's shape, with its place in the outbox (`seq`) and its SKUs. */
export type StockholdEvent = {
  [T in EventType]: { id: string; type: T; createdAt: string; data: EventData[T] };
}[EventType] & {
  seq: string;
  skus: string[];
};

/**
 * The threshold events of a change of `available` from `before` to `after` (PostgreSQL's figures,
 * under the SKU's row lock), in the order a reader expects them. Each fires on the crossing only:
 * - `stock.low`: from above the threshold to at or below it (also when it goes straight to 0: a
 *   subscriber to `stock.low` alone must still hear that stock ran low);
 * - `stock.sold_out`: from above 0 to 0 (or below, which only a lost hold can cause);
 * - `stock.back_in_stock`: from 0 (or below) to above 0.
 */
export function thresholdCrossings(before: number, after: number, threshold: number | null): ThresholdEventType[] {
  const crossed: ThresholdEventType[] = [];
  if (before <= 0 && after > 0) crossed.push('stock.back_in_stock');
  if (threshold !== null && before > threshold && after <= threshold) crossed.push('stock.low');
  if (before > 0 && after <= 0) crossed.push('stock.sold_out');
  return crossed;
}
