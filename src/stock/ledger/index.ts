/**
 * The PostgreSQL ledger, the source of truth: SKU rows (skus.ts), the append-only movements
 * (movements.ts) and reservations (reservations.ts), each change writing its events in its own
 * transaction (events.ts). `skus.total` changes only with a `stock_movements` row.
 */
import type { Pool } from 'pg';
import type { SkuFigures } from '../redis/counters';
import { BundleLedger } from './bundles';
import { EventWriter } from './events';
import { HoldLedger } from './holds';
import { LocationLedger } from './locations';
import { MovementLedger } from './movements';
import { ReservationLedger } from './reservations';
import { SkuLedger } from './skus';

export { LedgerRefusal } from './holds';
export { type SoldLine } from './reservations';
export { MOVEMENT_COLUMNS, MOVEMENT_FROM, movementOf, type LedgerMovement } from './movements';

/** One SKU as a rebuild loads it, from one consistent PostgreSQL snapshot. */
export interface SkuSnapshot extends SkuFigures {
  sku: string;
}

export class Ledger {
  readonly skus: SkuLedger;
  readonly movements: MovementLedger;
  readonly reservations: ReservationLedger;
  readonly holds: HoldLedger;
  readonly locations: LocationLedger;
  readonly bundles: BundleLedger;

  /** `outbox: false` writes no events (only bench:outbox's baseline does, to measure what they cost). */
  constructor(
    readonly db: Pool,
    outbox = true,
  ) {
    const events = new EventWriter(outbox);
    this.skus = new SkuLedger(db);
    this.movements = new MovementLedger(db, this.skus, events);
    this.reservations = new ReservationLedger(db, this.movements, outbox);
    this.holds = new HoldLedger(db, outbox);
    this.locations = new LocationLedger(db);
    this.bundles = new BundleLedger(db);
  }
}
