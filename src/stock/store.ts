/**
 * StockStore: every write of the stock module (holds, releases, sales, admin writes) on top of
 * its reads (./reads.ts), keeping the order of writes of docs/DESIGN.md between PostgreSQL and Redis.
 */
import type { PoolClient } from 'pg';
import { wouldOversell, type StockholdError } from '../domain/errors';
import { stockView, type CartLine, type ReleaseStatus, type ReservationLine, type ReturnResult, type SkuRow, type StockView } from '../domain/types';
import { transaction } from './database';
import { idempotent } from './idempotency';
import { LedgerRefusal } from './ledger';
import { StockReads } from './reads';

export type { StockStoreOptions } from './reads';

export interface HoldInput {
  reservationId: string;
  /** The workflow run holding: a run that gave up is fenced off, a new run of the same id is not. */
  run?: string;
  items: CartLine[];
  customerId?: string;
  expiresAt: string;
}

/** The unexplained-drift kind (reconciler_counts `unexplained:refused_hold`) of a hold PostgreSQL refused after Redis applied it. */
export const REFUSED_HOLD = 'refused_hold';
/** How long a write waits for Redis to take a durable movement before answering without it. */
const APPLY_PATIENCE_MS = 2_000;

/**
 * The stock module's façade, called by the API and the activities with validated input (the
 * rules are in src/domain; HTTP bodies are checked in src/api, Temporal messages in src/workflows):
 * the reads (./reads.ts) and every write. PostgreSQL (the ledger) is the source of truth; Redis
 * (the counters) holds the hot figures. A hold goes to Redis first (it absorbs the storm), then to
 * PostgreSQL, which has the last word. Other durable changes go to PostgreSQL first, then Redis,
 * except a negative adjustment, whose Redis check runs inside the PostgreSQL transaction so that it
 * can be refused. Redis left behind by a failure is caught up by the movement's retry or by the
 * reconciler (src/reconciler/).
 */
export class StockStore extends StockReads {
  // ---------------------------------------------------------------- admin writes

  /** Creates a SKU with its initial stock (ledger `initial`), then loads its counters. */
  async createSku(input: { sku: string; total: number; name?: string }, idempotencyKey?: string): Promise<StockView> {
    const name = input.name ?? '';
    const { result, fresh, movementIds } = await idempotent(this.db, idempotencyKey, { op: 'createSku', input }, async (c) => {
      const { movementId } = await this.ledger.movements.createSku(c, input.sku, name, input.total);
      return { result: stockView(input.sku, name, input.total, 0), movementIds: [movementId] };
    });
    // A new SKU has no holds; "force" clears counters a previous life may have left in Redis. A
    // repeat loads it only if Redis missed it.
    await this.counters.load(input.sku, { total: input.total, name, mark: movementIds[0] ?? '0', holds: [] }, fresh ? 'force' : 'missing');
    return result;
  }

  /** Raises total by `quantity` (ledger `restock`): PostgreSQL first, then Redis. */
  async restock(sku: string, input: { quantity: number; reason?: string }, idempotencyKey?: string): Promise<StockView> {
    const { result, movementIds } = await idempotent(this.db, idempotencyKey, { op: 'restock', sku, input }, async (c) => {
      const moved = await this.ledger.movements.move(c, { sku, kind: 'restock', delta: input.quantity, reason: input.reason });
      return { result: stockView(sku, moved.name, moved.total, await this.reservedOf(sku), moved), movementIds: [moved.movementId] };
    });
    await this.applyMovements(movementIds);
    return result;
  }

  /**
   * Changes total by a signed delta (ledger `adjustment`). A lowering runs its Redis check
   * (`total + delta >= reserved`) inside the PostgreSQL transaction, so a refusal rolls the ledger
   * row back; a raise goes PostgreSQL first, then Redis, as a restock does.
   */
  async adjust(sku: string, input: { delta: number; reason: string }, idempotencyKey?: string): Promise<StockView> {
    const { result, movementIds, fresh } = await idempotent(this.db, idempotencyKey, { op: 'adjust', sku, input }, async (c) => {
      const current = await this.ledger.skus.lockSku(c, sku);
      // PostgreSQL's own HELD units count too: Redis may have lost a hold that is still promised.
      if (current.total + input.delta < Math.max(current.reserved, 0)) {
        throw wouldOversell(sku, current.total, Math.max(current.reserved, await this.reservedOf(sku)), input.delta);
      }
      const { movementId, total } = await this.ledger.movements.move(c, { sku, kind: 'adjustment', delta: input.delta, reason: input.reason });
      if (input.delta > 0) return { result: stockView(sku, current.name, total, await this.reservedOf(sku), current), movementIds: [movementId] };
      // If COMMIT fails after this, Redis is below PostgreSQL (never above): the reconciler repairs it.
      const figures = await this.counters.adjust(sku, movementId, input.delta).catch(async (err: unknown) => {
        throw await this.explainMissing(err);
      });
      return { result: stockView(sku, current.name, total, figures.reserved, current), movementIds: [movementId] };
    });
    if (input.delta > 0 || !fresh) await this.applyMovements(movementIds);
    return result;
  }

  /**
   * Changes a SKU's name and settings (PATCH: the fields given; null unsets a setting). Redis
   * takes them inside the PostgreSQL transaction, under the SKU's row lock, so a refusal or an
   * unreachable Redis changes nothing, and the bought counts a limit needs are a snapshot no sale
   * or return can slip past (see `applySettings`).
   */
  async updateSku(sku: string, patch: { name?: string; lowStockThreshold?: number | null; maxPerCustomer?: number | null }): Promise<StockView> {
    return transaction(this.db, async (c) => {
      const row = await this.ledger.skus.updateSku(c, sku, patch);
      const figures = await this.settingsToRedis(c, sku, row);
      return stockView(sku, row.name, row.total, figures.reserved, row);
    });
  }

  /**
   * Gives Redis a SKU's settings and, with a limit, its customers' bought counts again, as
   * PostgreSQL has them (the reconciler's repair of settings or bought counts that drifted).
   */
  async applySettings(sku: string): Promise<void> {
    await transaction(this.db, async (c) => this.settingsToRedis(c, sku, await this.ledger.skus.lockSku(c, sku)));
  }

  /**
   * The Redis step of a settings change, with the SKU's row locked in `c`: no sale or return of
   * the SKU commits until the transaction ends, so the bought counts read now and the ledger
   * position `bmark` agree with every later movement (which the scripts add as they apply it).
   */
  private async settingsToRedis(c: PoolClient, sku: string, row: SkuRow): Promise<{ total: number; reserved: number }> {
    const { mark, bought } = row.maxPerCustomer ? await this.ledger.skus.bought(c, sku) : { mark: '0', bought: [] };
    return this.counters.settings(sku, row, mark, bought).catch(async (err: unknown) => {
      throw await this.explainMissing(err);
    });
  }

  /** Records a return of sold units (ledger `return`, total raised): PostgreSQL first, then Redis. */
  async recordReturn(input: { reservationId: string; items: CartLine[]; reason?: string }, idempotencyKey?: string): Promise<ReturnResult> {
    const { result, movementIds } = await idempotent(this.db, idempotencyKey, { op: 'return', input }, async (c) => {
      const movementIds = await this.ledger.reservations.recordReturn(c, input.reservationId, input.items, input.reason);
      // Redis must answer before the return commits (as a restock's does): with Redis down the
      // return is 503 and changes nothing, rather than recorded with Redis left behind.
      await this.counters.loaded();
      return { result: { reservationId: input.reservationId, items: input.items.map((i) => ({ sku: i.sku, returnedQuantity: i.quantity })) }, movementIds };
    });
    await this.applyMovements(movementIds);
    return result;
  }

  // ---------------------------------------------------------------- reservations (activities)

  /**
   * Holds every line or none (Redis decides), then records the reservation as HELD in
   * PostgreSQL. Idempotent by reservation id: a retry finds the hold and writes nothing new.
   */
  async hold(input: HoldInput): Promise<{ alreadyHeld: boolean }> {
    let held: { alreadyHeld: boolean; newlyHeld: CartLine[] };
    try {
      held = await this.counters.hold(input.reservationId, input.run ?? '', input.items, input.customerId ?? '');
    } catch (err) {
      throw await this.explainMissing(err);
    }
    try {
      await this.ledger.holds.recordHold({ reservationId: input.reservationId, items: input.items, customerId: input.customerId, expiresAt: input.expiresAt });
    } catch (err) {
      if (err instanceof LedgerRefusal) throw await this.refusedByLedger(input, err);
      // Another cart under an id already recorded (on a cluster the scripts see one slot group
      // at a time): give back what this call held, keep the recorded reservation's holds.
      if ((err as StockholdError).code === 'RESERVATION_ID_CONFLICT' && held.newlyHeld.length > 0) {
        await this.counters.release(input.reservationId, held.newlyHeld.map((l) => l.sku), '');
      }
      throw err;
    }
    return { alreadyHeld: held.alreadyHeld };
  }

  /**
   * PostgreSQL refused a hold Redis had applied: Redis lost units another reservation holds (a
   * failover to a lagging replica), so the buyer is refused, never promised units already
   * promised. Gives back every line Redis holds for this run (fencing off its late attempts,
   * as a run that gave up is), reports the disagreement as drift nothing in flight explains (the
   * reconciler puts the lost hold back), and returns the refusal the buyer hears.
   */
  private async refusedByLedger(input: HoldInput, err: LedgerRefusal): Promise<StockholdError> {
    const { reservationId, items } = input;
    await this.counters.release(reservationId, items.map((l) => l.sku), `${reservationId}@${input.run ?? ''}`);
    this.alert('PostgreSQL refused a hold Redis applied (Redis lost a hold): refused, and given back in Redis', {
      reservationId,
      refusal: err.refusal.code,
      details: err.refusal.details,
    });
    await this.drift.count(`unexplained:${REFUSED_HOLD}`).catch(() => undefined);
    return err.refusal;
  }

  /**
   * Records a reservation's final status, then gives back its hold. Idempotent. A REJECTED one
   * (its run gave up) fences off only that `run`, so the id can be used again.
   */
  async release(reservationId: string, skus: readonly string[], status: ReleaseStatus, reason?: string, run?: string): Promise<{ units: number }> {
    await this.ledger.reservations.recordRelease(reservationId, status, reason).catch(async (err: { code?: string }) => {
      // A reason PostgreSQL cannot store must not keep the units held: release without it.
      if (typeof err?.code !== 'string' || !err.code.startsWith('22')) throw err;
      await this.ledger.reservations.recordRelease(reservationId, status);
    });
    return this.counters.release(reservationId, skus, status === 'REJECTED' ? `${reservationId}@${run ?? ''}` : reservationId);
  }

  /**
   * Sells at most the held quantity of each line (all of it without `items`) and releases the
   * rest: the sale rows and totals in one PostgreSQL transaction first (refused with
   * INSUFFICIENT_STOCK if PostgreSQL's total cannot cover it), then Redis. Idempotent.
   */
  async commit(reservationId: string, items?: CartLine[], paymentId?: string): Promise<{ items: ReservationLine[] }> {
    const sale = await transaction(this.db, (c) => this.ledger.reservations.recordSale(c, reservationId, items, paymentId));
    await this.counters.commit(
      reservationId,
      sale.items.map((l) => ({ sku: l.sku, committedQuantity: l.committedQuantity, movementId: l.movementId })),
      sale.customerId ?? '',
    );
    return { items: sale.items.map(({ movementId: _, ...line }) => line) };
  }

  /** Moves a HELD reservation's deadline in PostgreSQL (the workflow's timer is the real one). */
  async extend(reservationId: string, expiresAt: string): Promise<void> {
    await this.ledger.reservations.recordExpiresAt(reservationId, expiresAt);
  }

  /**
   * Makes sure Redis has these durable movements (idempotent by id), retrying briefly while its
   * counters are missing or it does not answer. The write is durable either way: if Redis stays
   * behind, the reconciler applies the movement after its grace period.
   */
  private async applyMovements(movementIds: readonly string[]): Promise<void> {
    if (movementIds.length === 0) return;
    const movements = await this.ledger.movements.movementsById(movementIds);
    const until = this.now() + APPLY_PATIENCE_MS;
    for (const movement of movements) {
      for (;;) {
        try {
          await this.counters.move(movement.sku, movement.id, movement.delta, movement.customerId ?? '');
          break;
        } catch (err) {
          if (this.now() > until) {
            this.warn('Redis did not take a durable movement; the reconciler will apply it', { movement, error: String(err) });
            return;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  }
}
