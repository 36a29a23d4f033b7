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

/** An event as committed: the contract's shape, with its place in the outbox (`seq`) and its SKUs. */
export type StockholdEvent = {
  [T in EventType]: { id: string; type: T; createdAt: string; data: EventData[T] };
}[EventType] & {
  seq: string;
  skus: string[];
};
