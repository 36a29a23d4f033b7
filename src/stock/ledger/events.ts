/**
 * The events of a ledger change, written by the change's own transaction (the outbox, outbox.ts):
 * the movements' `stock.changed`, the reservation's event, and each SKU's threshold crossings.
 */
import type { PoolClient } from 'pg';
import type { ReservationEventType } from '../../domain/events';
import type { Movement, ReservationView } from '../../domain/types';
import { changeEvents, recordEvents } from '../outbox';
import type { SkuRow } from '../../domain/types';

/** A ledger movement as its `stock.changed` event carries it, with its SKU. */
export type SkuMovement = Movement & { sku: string };

export class EventWriter {
  /** `outbox: false` writes no events (only bench:outbox's baseline does, to measure what they cost). */
  constructor(readonly outbox = true) {}

  /**
   * Writes the events of a change in the caller's transaction, with the SKUs of `before` locked:
   * the movements' `stock.changed`, the reservation's event, and the threshold events of each SKU
   * from its row in `before` to its row in `after`.
   */
  async write(
    c: PoolClient,
    change: {
      before: Map<string, SkuRow>;
      after: Map<string, SkuRow>;
      movements?: SkuMovement[];
      reservation?: { type: ReservationEventType; view: ReservationView };
    },
  ): Promise<void> {
    if (!this.outbox) return;
    await recordEvents(
      c,
      changeEvents({
        before: change.before,
        after: change.after,
        movements: change.movements ?? [],
        reservation: change.reservation,
      }),
    );
  }
}
