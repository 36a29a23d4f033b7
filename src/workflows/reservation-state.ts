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
import type { SearchAttributePair } from '@temporalio/common';
import { upsertSearchAttributes, workflowInfo, type ApplicationFailure } from '@temporalio/workflow';
import type { Allocation, LineAllocation, ReservationLine, ReservationStatus, ReservationView } from '../domain/types';
import { searchableSkus, searchAttributes, type ReservationInput } from './definitions';
import { failure } from '../domain/failures';

/**
 * Runs started before this change upserted every search attribute at each status change and
 * started a new TTL timer at every extend: each upsert and each timer is a billable Temporal Cloud
 * Action (docs/CAPACITY.md). Newer runs send only what changed and keep a timer that is still early
 * enough; replay keeps the older runs on their path.
 */
export const FEWER_ACTIONS = 'fewer-actions';

/** Whether a search attribute already shows `value` (a Datetime by its instant, a list element by element). */
function sameValue(shown: unknown, value: unknown): boolean {
  if (shown instanceof Date && value instanceof Date) return shown.getTime() === value.getTime();
  if (Array.isArray(shown) && Array.isArray(value))
    return shown.length === value.length && shown.every((x, i) => x === value[i]);
  return shown === value;
}

export class ReservationState {
  status: ReservationStatus = 'PENDING';
  /**
   * Set for runs behind FEWER_ACTIONS: `become()` upserts only the attributes whose value differs
   * from what the run already shows (the start's attributes included), and none when nothing does.
   */
  onlyChangedAttributes = false;
  items: ReservationLine[];
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
    this.items = input.items.map((i) => ({
      sku: i.sku,
      quantity: i.quantity,
      committedQuantity: 0,
      returnedQuantity: 0,
    }));
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
      items: this.items.map((l) => ({ ...l })),
      customerId: this.input.customerId ?? null,
      expiresAt: new Date(this.expiresAtMs).toISOString(),
      createdAt: this.createdAt,
      updatedAt: this.updatedAt,
      workflowId: workflowInfo().workflowId,
    };
  }

  /**
   * Enters `next` and shows it to the Web UI's search attributes. The Web UI sees the same values
   * either way: an upsert merges, so an attribute left out keeps what the start or an earlier
   * upsert set.
   */
  become(next: ReservationStatus): void {
    this.status = next;
    this.updatedAt = new Date(Date.now()).toISOString();
    const wanted: SearchAttributePair[] = [
      { key: searchAttributes.status, value: next },
      { key: searchAttributes.skus, value: searchableSkus(this.skus) },
      { key: searchAttributes.expiresAt, value: new Date(this.expiresAtMs) },
      ...(this.input.customerId ? [{ key: searchAttributes.customerId, value: this.input.customerId }] : []),
    ];
    if (!this.onlyChangedAttributes) return upsertSearchAttributes(wanted);
    const shown = workflowInfo().typedSearchAttributes;
    const changed = wanted.filter((pair) => !sameValue(shown.get(pair.key), pair.value));
    if (changed.length > 0) upsertSearchAttributes(changed);
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

  /** Records where the hold put each line (contract v3; null: all at `default`, shown as in v2). */
  allocated(allocations: readonly (readonly Allocation[] | null)[] | undefined): void {
    if (!allocations) return;
    this.items = this.items.map((l, i) => {
      const at = allocations[i];
      return at ? { ...l, allocations: at.map((a) => ({ ...a, committedQuantity: 0 })) } : l;
    });
  }

  /** Records what a commit sold per line (and, per allocation, where from). */
  sold(committed: readonly { sku: string; committedQuantity: number; allocations?: LineAllocation[] }[]): void {
    this.items = this.items.map((l) => {
      const line = committed.find((c) => c.sku === l.sku);
      return {
        ...l,
        committedQuantity: line?.committedQuantity ?? 0,
        ...(line?.allocations ? { allocations: line.allocations } : {}),
      };
    });
  }

  /** Moves the deadline `ttlSeconds` from now. */
  extend(ttlSeconds: number): void {
    this.expiresAtMs = Date.now() + ttlSeconds * 1000;
  }

  /** The refusal for acting on a reservation that is no longer HELD. */
  notHeld(): ApplicationFailure {
    const { reservationId } = this.input;
    return failure(`RESERVATION_${this.status}`, `reservation ${reservationId} is ${this.status}`, {
      reservationId,
      status: this.status,
    });
  }
}
