/**
 * The state of one reservation and its transitions, kept apart from the handlers that drive it
 * (as samples-typescript's safe-message-handlers keeps its cluster state in a class).
 *
 *   PENDING ──hold──▶ HELD ──commit / paymentSucceeded──▶ COMMITTED
 *      │               ├──cancel / paymentFailed────────▶ CANCELLED
 *      ▼               └──TTL timer (moved by extend)───▶ EXPIRED
 *   REJECTED
 *
 * Exactly one settlement (commit or release) ever runs; whoever comes second waits for it.
 */
import { ApplicationFailure, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ReservationLine, ReservationStatus, ReservationView } from '../domain/types';
import { searchableSkus, searchAttributes, type ReservationInput } from './definitions';
import { refusal } from './validators';

export class ReservationState {
  status: ReservationStatus = 'PENDING';
  lines: ReservationLine[];
  expiresAtMs: number;
  readonly createdAt: string;
  updatedAt: string;
  /** Why the hold was refused, for the callers waiting on it and for repeats. */
  rejection?: ApplicationFailure;
  /** The one commit or release in progress (or done); set once it starts. */
  settlement?: Promise<void>;

  constructor(readonly input: ReservationInput) {
    this.createdAt = new Date(Date.now()).toISOString(); // workflow clock: deterministic on replay
    this.updatedAt = this.createdAt;
    this.lines = input.items.map((i) => ({ sku: i.sku, quantity: i.quantity, committedQuantity: 0, returnedQuantity: 0 }));
    this.expiresAtMs = Date.now() + input.ttlSeconds * 1000;
  }

  get skus(): string[] {
    return this.input.items.map((i) => i.sku);
  }

  /** HELD and nobody settling it: a commit or release may start. */
  get settleable(): boolean {
    return this.status === 'HELD' && !this.settlement;
  }

  view(): ReservationView {
    return {
      reservationId: this.input.reservationId,
      status: this.status,
      items: this.lines.map((l) => ({ ...l })),
      customerId: this.input.customerId ?? null,
      expiresAt: new Date(this.expiresAtMs).toISOString(),
      createdAt: this.createdAt,
      updatedAt: this.updatedAt,
      workflowId: workflowInfo().workflowId,
    };
  }

  /** Enters `next` and shows it to the Web UI's search attributes. */
  become(next: ReservationStatus): void {
    this.status = next;
    this.updatedAt = new Date(Date.now()).toISOString();
    upsertSearchAttributes([
      { key: searchAttributes.status, value: next },
      { key: searchAttributes.skus, value: searchableSkus(this.skus) },
      { key: searchAttributes.expiresAt, value: new Date(this.expiresAtMs) },
      ...(this.input.customerId ? [{ key: searchAttributes.customerId, value: this.input.customerId }] : []),
    ]);
  }

  /** Starts the one settlement; a failed one is cleared so that HELD can settle again. */
  settle(work: () => Promise<void>): Promise<void> {
    const attempt = work().catch((err: unknown) => {
      this.settlement = undefined;
      throw err;
    });
    this.settlement = attempt;
    return attempt;
  }

  /** Records what a commit sold per line. */
  sold(committed: readonly { sku: string; committedQuantity: number }[]): void {
    this.lines = this.lines.map((l) => ({ ...l, committedQuantity: committed.find((c) => c.sku === l.sku)?.committedQuantity ?? 0 }));
  }

  /** Moves the deadline `ttlSeconds` from now. */
  extend(ttlSeconds: number): void {
    this.expiresAtMs = Date.now() + ttlSeconds * 1000;
  }

  /** The refusal for acting on a reservation that is no longer HELD. */
  notHeld(): ApplicationFailure {
    const { reservationId } = this.input;
    return refusal(`RESERVATION_${this.status}`, `reservation ${reservationId} is ${this.status}`, { reservationId, status: this.status });
  }
}
