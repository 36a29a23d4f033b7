/**
 * The same-shape floor: the service's own reservationWorkflow (its bundle, patches, search
 * attribute upserts, memo, TTL timer, the hold and the commit as local activities) with
 * activities that do no I/O. What the service adds above this floor is its stores and its own
 * code around Temporal; what the floor adds above the bare workflow is the reservation's shape.
 */
import type { ReservationActivities } from '../../src/activities';
import type { CartLine, ReservationLine } from '../../src/domain/types';

export function noIoActivities(): ReservationActivities {
  // The worker's memory stands in for the stores: what each reservation holds until it settles.
  const held = new Map<string, CartLine[]>();
  const settle = (reservationId: string): CartLine[] => {
    const lines = held.get(reservationId) ?? [];
    held.delete(reservationId);
    return lines;
  };
  return {
    async holdStock(input) {
      const alreadyHeld = held.has(input.reservationId);
      held.set(input.reservationId, input.items);
      return { alreadyHeld };
    },
    async commitStock(input): Promise<ReservationLine[]> {
      return settle(input.reservationId).map((l) => ({
        sku: l.sku,
        quantity: l.quantity,
        committedQuantity: input.items ? (input.items.find((i) => i.sku === l.sku)?.quantity ?? 0) : l.quantity,
        returnedQuantity: 0,
      }));
    },
    async releaseStock(input) {
      return settle(input.reservationId).reduce((units, l) => units + l.quantity, 0);
    },
    async extendReservation() {},
  };
}
