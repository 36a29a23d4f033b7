import type { Pool } from 'pg';
import { insufficientStock, skuNotFound, unavailable, wouldOversell, type StockholdError } from '../domain/errors';
import { DEFAULT_MOVEMENTS } from '../domain/limits';
import { stockView, type CartLine, type Movement, type ReleaseStatus, type ReservationLine, type ReservationView, type ReturnResult, type StockHold, type StockView } from '../domain/types';
import { transaction } from './database';
import { idempotent } from './idempotency';
import { keys } from './keys';
import { Ledger } from './ledger';
import { CountersMissing, StockScripts, type StockRedis } from './scripts';

export interface StockStoreOptions {
  /** How long Redis remembers finished reservations and applied movements (retry window). */
  doneRetentionMs?: number;
  now?: () => number;
}

export interface HoldInput {
  reservationId: string;
  items: CartLine[];
  customerId?: string;
  expiresAt: string;
}

/** What a commit did in Redis once the sale was durable: `redisBehind` names a SKU whose counters missed it. */
export interface CommitResult {
  lines: ReservationLine[];
  redisBehind?: { sku: string; why: 'notLoaded' | 'notHeld' };
}

const DAY_MS = 86_400_000;

/**
 * The stock module's façade, called by the API and the activities with validated input (the
 * rules are in src/domain; HTTP bodies are checked in src/api, Temporal messages in src/workflows).
 * PostgreSQL (Ledger) is the source of truth; Redis (StockScripts) holds the hot counters. Durable
 * changes go to PostgreSQL first, then Redis, except a negative adjustment, whose Redis check runs
 * inside the PostgreSQL transaction so that it can be refused.
 */
export class StockStore {
  readonly ledger: Ledger;
  readonly scripts: StockScripts;
  private readonly now: () => number;

  constructor(
    readonly redis: StockRedis,
    readonly db: Pool,
    options: StockStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.ledger = new Ledger(db);
    this.scripts = new StockScripts(redis, options.doneRetentionMs ?? 7 * DAY_MS, this.now);
  }

  // ---------------------------------------------------------------- reads (Redis only)

  /** One SKU's figures, from Redis only (the page-load path). */
  async getStock(sku: string): Promise<StockView> {
    const [total, reserved, name] = await this.redis.hmget(keys.stock(sku), 'total', 'reserved', 'name');
    if (total === null) throw await this.explainMissing(new CountersMissing(sku));
    return stockView(sku, name ?? '', Number(total), Number(reserved ?? 0));
  }

  /** Figures of several SKUs in one round trip; unknown ones are listed in `missing`. */
  async getAvailability(skus: readonly string[]): Promise<{ items: StockView[]; missing: string[] }> {
    const unique = [...new Set(skus)];
    const pipeline = this.redis.pipeline();
    for (const sku of unique) pipeline.hmget(keys.stock(sku), 'total', 'reserved', 'name');
    pipeline.exists(keys.loaded);
    const replies = (await pipeline.exec()) ?? [];
    const items: StockView[] = [];
    const missing: string[] = [];
    unique.forEach((sku, i) => {
      const [err, value] = replies[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      const [total, reserved, name] = value as (string | null)[];
      if (total === null || total === undefined) missing.push(sku);
      else items.push(stockView(sku, name ?? '', Number(total), Number(reserved ?? 0)));
    });
    if (missing.length > 0 && replies[unique.length]?.[1] !== 1) throw notLoaded();
    return { items, missing };
  }

  /**
   * The flash-sale pre-check of a cart, from Redis: the refusal the cart would get now, if any
   * (unknown SKU, not enough available), and each line's available units. The Lua hold still
   * decides; this only spares Temporal and PostgreSQL the carts that cannot be held.
   */
  async precheck(items: readonly CartLine[]): Promise<{ refusal?: StockholdError; available: number[] }> {
    const counters = await Promise.all(items.map((i) => this.redis.hmget(keys.stock(i.sku), 'total', 'reserved')));
    const available = counters.map(([total, reserved]) => Number(total ?? 0) - Number(reserved ?? 0));
    for (const [i, [total]] of counters.entries()) {
      const item = items[i]!;
      if (total === null) return { refusal: (await this.explainMissing(new CountersMissing(item.sku))) as StockholdError, available };
      if (available[i]! < item.quantity) return { refusal: insufficientStock(item.sku, item.quantity, available[i]!), available };
    }
    return { available };
  }

  /** Whether Redis knows this reservation on `sku`: holding, or finished. */
  async knowsReservation(reservationId: string, sku: string): Promise<boolean> {
    const [held, done] = await Promise.all([this.redis.hexists(keys.holds(sku), reservationId), this.redis.zscore(keys.done(sku), reservationId)]);
    return held === 1 || done !== null;
  }

  /** Who holds a SKU's stock now: Redis's holds, with each reservation's deadline from PostgreSQL. */
  async getHolds(sku: string): Promise<{ sku: string; holds: StockHold[] }> {
    const [[, exists], [, held]] = ((await this.redis.multi().exists(keys.stock(sku)).hgetall(keys.holds(sku)).exec()) ?? []) as [
      [unknown, number],
      [unknown, Record<string, string>],
    ];
    if (exists !== 1) throw await this.explainMissing(new CountersMissing(sku));
    const deadlines = await this.ledger.deadlines(Object.keys(held));
    const holds = Object.entries(held)
      .map(([reservationId, quantity]) => ({ reservationId, quantity: Number(quantity), expiresAt: deadlines.get(reservationId) ?? null }))
      .sort((a, b) => (a.expiresAt ?? '').localeCompare(b.expiresAt ?? '') || a.reservationId.localeCompare(b.reservationId));
    return { sku, holds };
  }

  /** The ledger of a SKU, newest first. */
  async getMovements(sku: string, limit = DEFAULT_MOVEMENTS): Promise<{ movements: Movement[] }> {
    return { movements: await this.ledger.movements(sku, limit) };
  }

  /** A reservation as PostgreSQL records it; undefined when it never got past the hold. */
  getReservation(reservationId: string): Promise<ReservationView | undefined> {
    return this.ledger.reservation(reservationId);
  }

  // ---------------------------------------------------------------- admin writes

  /** Creates a SKU with its initial stock (ledger `initial`), then loads its counters. */
  async createSku(input: { sku: string; total: number; name?: string }, idempotencyKey?: string): Promise<StockView> {
    const name = input.name ?? '';
    const { result, fresh } = await idempotent(this.db, idempotencyKey, { op: 'createSku', input }, async (c) => {
      await this.ledger.createSku(c, input.sku, name, input.total);
      return stockView(input.sku, name, input.total, 0);
    });
    // A new SKU has no holds; "force" clears counters a previous life may have left in Redis.
    if (fresh) await this.scripts.load(input.sku, { total: input.total, name, holds: [] }, 'force');
    return result;
  }

  /** Raises total by `quantity` (ledger `restock`): PostgreSQL first, then Redis. */
  async restock(sku: string, input: { quantity: number; reason?: string }, idempotencyKey?: string): Promise<StockView> {
    let movementId = '';
    const { result, fresh } = await idempotent(this.db, idempotencyKey, { op: 'restock', sku, input }, async (c) => {
      const moved = await this.ledger.move(c, { sku, kind: 'restock', delta: input.quantity, reason: input.reason });
      movementId = moved.movementId;
      return stockView(sku, moved.name, moved.total, await this.reservedOf(sku));
    });
    if (fresh) await this.applyRaise(sku, movementId, input.quantity);
    return result;
  }

  /**
   * Changes total by a signed delta (ledger `adjustment`). The Redis step runs inside the
   * PostgreSQL transaction: it is the atomic "total + delta >= reserved" check, and its refusal
   * rolls the ledger row back. A failed COMMIT is undone in Redis.
   */
  async adjust(sku: string, input: { delta: number; reason: string }, idempotencyKey?: string): Promise<StockView> {
    let applied: string | undefined;
    try {
      const { result } = await idempotent(this.db, idempotencyKey, { op: 'adjust', sku, input }, async (c) => {
        const current = await this.ledger.lockSku(c, sku);
        if (current.total + input.delta < 0) throw wouldOversell(sku, current.total, await this.reservedOf(sku), input.delta);
        const { movementId, total } = await this.ledger.move(c, { sku, kind: 'adjustment', delta: input.delta, reason: input.reason });
        const figures = await this.scripts.adjust(sku, movementId, input.delta).catch(async (err: unknown) => {
          throw await this.explainMissing(err);
        });
        applied = movementId;
        return stockView(sku, current.name, total, figures.reserved);
      });
      return result;
    } catch (err) {
      if (applied) {
        // Redis took the delta but PostgreSQL did not commit it: take it back out of Redis.
        await this.scripts.adjust(sku, `${applied}:undo`, -input.delta).catch(() => undefined);
      }
      throw err;
    }
  }

  /** Records a return of sold units (ledger `return`, total raised): PostgreSQL first, then Redis. */
  async recordReturn(input: { reservationId: string; items: CartLine[]; reason?: string }, idempotencyKey?: string): Promise<ReturnResult> {
    let movementIds: string[] = [];
    const { result, fresh } = await idempotent(this.db, idempotencyKey, { op: 'return', input }, async (c) => {
      movementIds = await this.ledger.recordReturn(c, input.reservationId, input.items, input.reason);
      return { reservationId: input.reservationId, items: input.items.map((i) => ({ sku: i.sku, returnedQuantity: i.quantity })) };
    });
    if (fresh) {
      for (const [i, item] of input.items.entries()) await this.applyRaise(item.sku, movementIds[i]!, item.quantity);
    }
    return result;
  }

  // ---------------------------------------------------------------- reservations (activities)

  /**
   * Holds every line or none (Redis decides), then records the reservation as HELD in
   * PostgreSQL. Idempotent by reservation id: a retry finds the hold and writes nothing new.
   */
  async hold(input: HoldInput): Promise<{ alreadyHeld: boolean }> {
    let held: { alreadyHeld: boolean };
    try {
      held = await this.scripts.hold(input.reservationId, input.items);
    } catch (err) {
      throw await this.explainMissing(err);
    }
    await this.ledger.recordHold({ reservationId: input.reservationId, lines: input.items, customerId: input.customerId, expiresAt: input.expiresAt });
    return held;
  }

  /** Records a reservation's final status, then gives back its hold. Idempotent. */
  async release(reservationId: string, skus: readonly string[], status: ReleaseStatus, reason?: string): Promise<{ units: number }> {
    await this.ledger.recordRelease(reservationId, status, reason);
    return this.scripts.release(reservationId, skus);
  }

  /**
   * Sells at most the held quantity of each line (all of it without `items`) and releases the
   * rest: the sale rows and totals in one PostgreSQL transaction first, then Redis. Idempotent: a
   * repeat finds the reservation COMMITTED and Redis's step already done.
   */
  async commit(reservationId: string, items?: CartLine[], paymentId?: string): Promise<CommitResult> {
    const lines = await transaction(this.db, (c) => this.ledger.recordSale(c, reservationId, items, paymentId));
    const { outcome, sku } = await this.scripts.commit(
      reservationId,
      lines.map((l) => ({ sku: l.sku, quantity: l.committedQuantity })),
    );
    // The sale is durable either way. Without counters (Redis lost its data) the rebuild from
    // PostgreSQL includes it; a lost hold leaves Redis behind, which the caller reports.
    if (outcome === 'notLoaded' || outcome === 'notHeld') return { lines, redisBehind: { sku: sku ?? '?', why: outcome } };
    return { lines };
  }

  /** Moves a HELD reservation's deadline in PostgreSQL (the workflow's timer is the real one). */
  async extend(reservationId: string, expiresAt: string): Promise<void> {
    await this.ledger.recordDeadline(reservationId, expiresAt);
  }

  // ---------------------------------------------------------------- rebuild

  /**
   * Loads every SKU's counters from PostgreSQL: total from `skus`, holds from HELD reservations.
   * Mode "missing" only fills SKUs that have no counters, so it is safe beside live traffic;
   * "force" overwrites (use only when nothing is in flight).
   */
  async rebuild(mode: 'missing' | 'force' = 'missing'): Promise<{ skus: number; loaded: number }> {
    const snapshot = await this.ledger.snapshot();
    let loaded = 0;
    for (const sku of snapshot) {
      if ((await this.scripts.load(sku.sku, sku, mode)).loaded) loaded += 1;
    }
    await this.redis.set(keys.loaded, new Date(this.now()).toISOString());
    return { skus: snapshot.length, loaded };
  }

  /** Rebuilds when Redis lost its data (the `loaded` marker is gone). Returns whether it rebuilt. */
  async ensureLoaded(): Promise<boolean> {
    if ((await this.redis.exists(keys.loaded)) === 1) return false;
    await this.rebuild('missing');
    return true;
  }

  // ---------------------------------------------------------------- helpers

  /**
   * A SKU without counters is unknown (404) while Redis is loaded, otherwise Redis lost its data
   * (503). Other errors pass through.
   */
  private async explainMissing(err: unknown): Promise<unknown> {
    if (!(err instanceof CountersMissing)) return err;
    if ((await this.redis.exists(keys.loaded)) === 1) return skuNotFound(err.sku);
    return notLoaded();
  }

  private async reservedOf(sku: string): Promise<number> {
    return Number((await this.redis.hget(keys.stock(sku), 'reserved')) ?? 0);
  }

  /** Applies a recorded raise (restock/return) to Redis; a SKU not loaded waits for the rebuild. */
  private async applyRaise(sku: string, movementId: string, quantity: number): Promise<void> {
    await this.scripts.raise(sku, movementId, quantity).catch((err: unknown) => {
      if (!(err instanceof CountersMissing)) throw err;
    });
  }
}

function notLoaded(): StockholdError {
  return unavailable('stock counters are not loaded in Redis yet (rebuilding from PostgreSQL); retry shortly');
}
