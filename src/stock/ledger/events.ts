/**
 * The events of a ledger change, written by the change's own transaction (the outbox, outbox.ts):
 * the movements' `stock.changed`, the reservation's event, and each SKU's threshold crossings.
 * They are composed in PostgreSQL by `stockhold_change_events` (migration 1765300000000), which
 * the hold, release and sale functions call too: the rules of the outbox are written once.
 */
import type { PoolClient } from 'pg';
import type { ReservationEventType } from '../../domain/events';
import type { Movement, SkuRow } from '../../domain/types';

/** A ledger movement as its `stock.changed` event carries it, with its SKU. */
export type SkuMovement = Movement & { sku: string };

export class EventWriter {
  /** `outbox: false` writes no events (only bench:outbox's baseline does, to measure what they cost). */
  constructor(readonly outbox = true) {}

  /**
   * Writes the events of a change in the caller's transaction, with the SKUs of `before` locked:
   * the movements' `stock.changed` (with each SKU's row now), the reservation's event, and the
   * threshold events of each SKU from its row in `before` to its row now.
   */
  async write(
    c: PoolClient,
    change: {
      before: ReadonlyMap<string, SkuRow>;
      movements?: readonly SkuMovement[];
      reservation?: { type: ReservationEventType; reservationId: string };
    },
  ): Promise<void> {
    if (!this.outbox) return;
    const before = Object.fromEntries([...change.before].map(([sku, row]) => [sku, row.total - row.reserved]));
    await c.query('SELECT stockhold_change_events($1, $2, $3, $4)', [
      JSON.stringify(before),
      JSON.stringify(change.movements ?? []),
      change.reservation?.type ?? null,
      change.reservation?.reservationId ?? null,
    ]);
  }
}
