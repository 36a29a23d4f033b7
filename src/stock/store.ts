import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { z } from 'zod';
import { StockholdError, unavailable } from './errors';
import { keys, lineKeys, ScriptCode, type StockRedis } from './redis-scripts';
import {
  deltaSchema,
  idempotencyKeySchema,
  linesSchema,
  MAX_STOCK,
  nameSchema,
  parse,
  positiveStockSchema,
  reasonSchema,
  reservationIdSchema,
  skuSchema,
  stockFigureSchema,
  type Line,
} from './schemas';

/** Stock view of the contract: available = total - reserved. */
export interface StockView {
  sku: string;
  name: string;
  total: number;
  reserved: number;
  available: number;
}

export type MovementKind = 'initial' | 'restock' | 'adjustment' | 'sale' | 'return';

export interface Movement {
  id: string;
  kind: MovementKind;
  delta: number;
  reservationId?: string;
  reason?: string;
  at: string;
}

export interface CommittedLine {
  sku: string;
  quantity: number;
  committedQuantity: number;
}

export type ReleaseStatus = 'CANCELLED' | 'EXPIRED' | 'REJECTED';

export interface StockStoreOptions {
  /** How long Redis remembers finished reservations and applied movements (retry window). */
  doneRetentionMs?: number;
  now?: () => number;
}

const expiresAtSchema = z.string().datetime();
const createSkuBody = z.strictObject({ sku: skuSchema, total: stockFigureSchema, name: nameSchema.optional() });
const restockBody = z.strictObject({ quantity: positiveStockSchema, reason: reasonSchema.optional() });
const adjustmentBody = z.strictObject({ delta: deltaSchema, reason: reasonSchema });
const returnBody = z.strictObject({ reservationId: reservationIdSchema, items: linesSchema, reason: reasonSchema.optional() });
const holdInput = z.strictObject({
  reservationId: reservationIdSchema,
  items: linesSchema,
  customerId: z.string().max(128).optional(),
  expiresAt: expiresAtSchema,
});
const limitSchema = z.number().int().min(1).max(500);
const releaseStatusSchema = z.enum(['CANCELLED', 'EXPIRED', 'REJECTED']);

const DAY_MS = 86_400_000;

/** A stable JSON form (sorted keys), so the same request always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function view(sku: string, name: string, total: number, reserved: number): StockView {
  return { sku, name, total, reserved, available: total - reserved };
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === '23505';
}

/**
 * The stock layer that the API and the activities call. PostgreSQL is the source of truth
 * (ledger row and total in one transaction); Redis holds the hot counters, changed only through
 * the Lua scripts of lua/. Durable changes go to PostgreSQL first, then Redis, except a negative
 * adjustment, whose Redis check runs inside the PostgreSQL transaction so it can be refused.
 * Every input is validated here; refusals are StockholdErrors with the contract's codes.
 */
export class StockStore {
  private readonly retentionMs: number;
  private readonly now: () => number;

  constructor(
    readonly redis: StockRedis,
    readonly db: Pool,
    options: StockStoreOptions = {},
  ) {
    this.retentionMs = options.doneRetentionMs ?? 7 * DAY_MS;
    this.now = options.now ?? Date.now;
  }

  // ---------------------------------------------------------------- reads (Redis only)

  /** One SKU's figures, from Redis only (the page-load path). */
  async getStock(rawSku: unknown): Promise<StockView> {
    const sku = parse(skuSchema, rawSku, 'sku');
    const [total, reserved, name] = await this.redis.hmget(keys.stock(sku), 'total', 'reserved', 'name');
    if (total === null) throw await this.missingCounters(sku);
    return view(sku, name ?? '', Number(total), Number(reserved ?? 0));
  }

  /** Figures of up to 100 SKUs in one round trip; unknown ones are listed in `missing`. */
  async getAvailability(rawSkus: unknown): Promise<{ items: StockView[]; missing: string[] }> {
    const skus = parse(z.array(skuSchema).min(1).max(100), rawSkus, 'skus');
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
      else items.push(view(sku, name ?? '', Number(total), Number(reserved ?? 0)));
    });
    const loaded = replies[unique.length]?.[1];
    if (missing.length > 0 && loaded !== 1) throw this.notLoaded();
    return { items, missing };
  }

  /** Who holds a SKU's stock now: Redis's holds, with each reservation's deadline from PostgreSQL. */
  async getHolds(rawSku: unknown): Promise<{ sku: string; holds: { reservationId: string; quantity: number; expiresAt: string | null }[] }> {
    const sku = parse(skuSchema, rawSku, 'sku');
    const [[, exists], [, held]] = ((await this.redis.multi().exists(keys.stock(sku)).hgetall(keys.holds(sku)).exec()) ?? []) as [
      [unknown, number],
      [unknown, Record<string, string>],
    ];
    if (exists !== 1) throw await this.missingCounters(sku);
    const ids = Object.keys(held);
    const deadlines = new Map<string, string>();
    if (ids.length > 0) {
      const rows = await this.db.query<{ id: string; expires_at: Date }>(
        'SELECT id, expires_at FROM reservations WHERE id = ANY($1::text[])',
        [ids],
      );
      for (const row of rows.rows) deadlines.set(row.id, row.expires_at.toISOString());
    }
    const holds = ids
      .map((reservationId) => ({ reservationId, quantity: Number(held[reservationId]), expiresAt: deadlines.get(reservationId) ?? null }))
      .sort((a, b) => (a.expiresAt ?? '').localeCompare(b.expiresAt ?? '') || a.reservationId.localeCompare(b.reservationId));
    return { sku, holds };
  }

  /** The ledger of a SKU, newest first. */
  async getMovements(rawSku: unknown, rawLimit: unknown = 50): Promise<{ movements: Movement[] }> {
    const sku = parse(skuSchema, rawSku, 'sku');
    const limit = parse(limitSchema, rawLimit, 'limit');
    const result = await this.db.query<{
      id: string;
      kind: MovementKind;
      delta: string;
      reservation_id: string | null;
      reason: string | null;
      at: Date;
      known: boolean;
    }>(
      `SELECT m.id, m.kind, m.delta, m.reservation_id, m.reason, m.at, true AS known
         FROM stock_movements m WHERE m.sku = $1 ORDER BY m.id DESC LIMIT $2`,
      [sku, limit],
    );
    if (result.rowCount === 0) {
      // Every SKU has its `initial` movement, so no rows means no SKU.
      throw new StockholdError('SKU_NOT_FOUND', `SKU ${sku} does not exist`, { sku });
    }
    return {
      movements: result.rows.map((r) => ({
        id: String(r.id),
        kind: r.kind,
        delta: Number(r.delta),
        ...(r.reservation_id ? { reservationId: r.reservation_id } : {}),
        ...(r.reason ? { reason: r.reason } : {}),
        at: r.at.toISOString(),
      })),
    };
  }

  // ---------------------------------------------------------------- admin writes

  /** Creates a SKU with its initial stock (ledger `initial`), then loads its counters. */
  async createSku(body: unknown, idempotencyKey?: unknown): Promise<StockView> {
    const input = parse(createSkuBody, body);
    const name = input.name ?? '';
    const created = await this.idempotent(idempotencyKey, { op: 'createSku', input }, async (c) => {
      const inserted = await c.query('INSERT INTO skus (sku, name, total) VALUES ($1, $2, $3) ON CONFLICT (sku) DO NOTHING', [
        input.sku,
        name,
        input.total,
      ]);
      if (inserted.rowCount === 0) throw new StockholdError('SKU_EXISTS', `SKU ${input.sku} already exists`, { sku: input.sku });
      await c.query(`INSERT INTO stock_movements (sku, kind, delta, reason) VALUES ($1, 'initial', $2, 'created')`, [input.sku, input.total]);
      return view(input.sku, name, input.total, 0);
    });
    if (created.fresh) {
      // A new SKU has no holds; "force" clears counters a previous life may have left in Redis.
      await this.redis.stockLoad(2, keys.stock(input.sku), keys.holds(input.sku), 'force', input.total, name);
    }
    return created.result;
  }

  /** Raises total by `quantity` (ledger `restock`): PostgreSQL first, then Redis. */
  async restock(rawSku: unknown, body: unknown, idempotencyKey?: unknown): Promise<StockView> {
    const sku = parse(skuSchema, rawSku, 'sku');
    const input = parse(restockBody, body);
    const { result, fresh, movementId } = await this.idempotentMovement(idempotencyKey, { op: 'restock', sku, input }, async (c) => {
      const updated = await c.query<{ total: string; name: string }>(
        'UPDATE skus SET total = total + $2, updated_at = now() WHERE sku = $1 AND total + $2 <= $3 RETURNING total, name',
        [sku, input.quantity, MAX_STOCK],
      );
      const row = updated.rows[0];
      if (!row) {
        if ((await c.query('SELECT 1 FROM skus WHERE sku = $1', [sku])).rowCount === 0) {
          throw new StockholdError('SKU_NOT_FOUND', `SKU ${sku} does not exist`, { sku });
        }
        throw new StockholdError('INVALID_REQUEST', 'quantity: total would exceed 2^31-1', { field: 'quantity' });
      }
      const movement = await c.query<{ id: string }>(
        `INSERT INTO stock_movements (sku, kind, delta, reason) VALUES ($1, 'restock', $2, $3) RETURNING id`,
        [sku, input.quantity, input.reason ?? null],
      );
      const reserved = Number((await this.redis.hget(keys.stock(sku), 'reserved')) ?? 0);
      return { movementId: movement.rows[0]!.id, result: view(sku, row.name, Number(row.total), reserved) };
    });
    if (fresh) await this.applyRaise(sku, movementId, input.quantity);
    return result;
  }

  /**
   * Changes total by a signed delta (ledger `adjustment`). The Redis step runs inside the
   * PostgreSQL transaction: it is the atomic "total + delta >= reserved" check, and its refusal
   * rolls the ledger row back. A failed COMMIT is undone in Redis.
   */
  async adjust(rawSku: unknown, body: unknown, idempotencyKey?: unknown): Promise<StockView> {
    const sku = parse(skuSchema, rawSku, 'sku');
    const input = parse(adjustmentBody, body);
    let applied: { movementId: string } | undefined;
    try {
      const { result } = await this.idempotent(idempotencyKey, { op: 'adjust', sku, input }, async (c) => {
        const current = await c.query<{ total: string; name: string }>('SELECT total, name FROM skus WHERE sku = $1 FOR UPDATE', [sku]);
        const row = current.rows[0];
        if (!row) throw new StockholdError('SKU_NOT_FOUND', `SKU ${sku} does not exist`, { sku });
        const total = Number(row.total) + input.delta;
        if (total > 2 ** 31 - 1) throw new StockholdError('INVALID_REQUEST', 'delta: total would exceed 2^31-1', { field: 'delta' });
        const movement = await c.query<{ id: string }>(
          `INSERT INTO stock_movements (sku, kind, delta, reason) VALUES ($1, 'adjustment', $2, $3) RETURNING id`,
          [sku, input.delta, input.reason],
        );
        const movementId = movement.rows[0]!.id;
        const [code, , reserved] = await this.redis.stockAdjust(2, keys.stock(sku), keys.done(sku), movementId, input.delta, this.now(), this.cutoff());
        if (code === ScriptCode.NotLoaded) throw this.notLoaded();
        if (code === ScriptCode.WouldOversell || total < 0) {
          throw new StockholdError('WOULD_OVERSELL', `adjusting ${sku} by ${input.delta} would leave total ${total} below reserved ${reserved}`, {
            sku,
            total: Number(row.total),
            reserved,
            delta: input.delta,
          });
        }
        applied = { movementId };
        await c.query('UPDATE skus SET total = $2, updated_at = now() WHERE sku = $1', [sku, total]);
        return view(sku, row.name, total, reserved);
      });
      return result;
    } catch (err) {
      if (applied) {
        // Redis took the delta but PostgreSQL did not commit it: take it back out of Redis.
        await this.redis
          .stockAdjust(2, keys.stock(sku), keys.done(sku), `${applied.movementId}:undo`, -input.delta, this.now(), this.cutoff())
          .catch(() => undefined);
      }
      throw err;
    }
  }

  /**
   * Records a return of sold units (ledger `return`, total raised). The database's CHECK
   * (returned <= committed per line) is what makes racing or repeated returns unable to exceed the sale.
   */
  async recordReturn(
    body: unknown,
    idempotencyKey?: unknown,
  ): Promise<{ reservationId: string; items: { sku: string; returnedQuantity: number }[] }> {
    const input = parse(returnBody, body);
    const { result, fresh, movementId: movementIds } = await this.idempotentMovement(
      idempotencyKey,
      { op: 'return', input },
      async (c) => {
        const reservation = await c.query<{ status: string }>('SELECT status FROM reservations WHERE id = $1 FOR UPDATE', [input.reservationId]);
        const status = reservation.rows[0]?.status;
        if (!status) {
          throw new StockholdError('RESERVATION_NOT_FOUND', `reservation ${input.reservationId} does not exist`, { reservationId: input.reservationId });
        }
        if (status !== 'COMMITTED') {
          throw new StockholdError('RESERVATION_NOT_COMMITTED', `reservation ${input.reservationId} is ${status}, not COMMITTED`, {
            reservationId: input.reservationId,
            status,
          });
        }
        const ids: string[] = [];
        for (const item of input.items) {
          const line = await c.query<{ committed_quantity: number; returned_quantity: number }>(
            'SELECT committed_quantity, returned_quantity FROM reservation_lines WHERE reservation_id = $1 AND sku = $2 FOR UPDATE',
            [input.reservationId, item.sku],
          );
          const returnable = line.rows[0] ? line.rows[0].committed_quantity - line.rows[0].returned_quantity : 0;
          if (item.quantity > returnable) {
            throw new StockholdError('RETURN_EXCEEDS_SALE', `return of ${item.quantity} ${item.sku} exceeds the ${returnable} sold and not yet returned`, {
              sku: item.sku,
              requested: item.quantity,
              returnable,
            });
          }
          await c.query('UPDATE reservation_lines SET returned_quantity = returned_quantity + $3 WHERE reservation_id = $1 AND sku = $2', [
            input.reservationId,
            item.sku,
            item.quantity,
          ]);
          await c.query('UPDATE skus SET total = total + $2, updated_at = now() WHERE sku = $1', [item.sku, item.quantity]);
          const movement = await c.query<{ id: string }>(
            `INSERT INTO stock_movements (sku, kind, delta, reservation_id, reason) VALUES ($1, 'return', $2, $3, $4) RETURNING id`,
            [item.sku, item.quantity, input.reservationId, input.reason ?? null],
          );
          ids.push(movement.rows[0]!.id);
        }
        return {
          movementId: ids.join(','),
          result: { reservationId: input.reservationId, items: input.items.map((i) => ({ sku: i.sku, returnedQuantity: i.quantity })) },
        };
      },
    );
    if (fresh) {
      const ids = movementIds.split(',');
      for (const [i, item] of input.items.entries()) await this.applyRaise(item.sku, ids[i]!, item.quantity);
    }
    return result;
  }

  // ---------------------------------------------------------------- reservations (activities)

  /**
   * Holds every line or none (Redis decides), then records the reservation as HELD in
   * PostgreSQL. Idempotent by reservation id: a retry finds the hold and writes nothing new.
   */
  async hold(raw: { reservationId: string; items: Line[]; customerId?: string; expiresAt: string }): Promise<{ alreadyHeld: boolean }> {
    const input = parse(holdInput, raw);
    const skus = input.items.map((l) => l.sku);
    const [code, line, available] = await this.redis.stockHold(
      skus.length * 3,
      ...lineKeys(skus),
      input.reservationId,
      ...input.items.map((l) => l.quantity),
    );
    const short = input.items[line - 1];
    switch (code) {
      case ScriptCode.Applied:
      case ScriptCode.Already:
        break;
      case ScriptCode.Insufficient:
        throw new StockholdError('INSUFFICIENT_STOCK', `only ${available} of ${short!.sku} available, ${short!.quantity} requested`, {
          sku: short!.sku,
          requested: short!.quantity,
          available,
        });
      case ScriptCode.NotLoaded:
        throw await this.missingCounters(short!.sku);
      case ScriptCode.AlreadyFinished:
        throw new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${input.reservationId} already finished; it cannot hold again`, {
          reservationId: input.reservationId,
        });
      default:
        throw new Error(`hold.lua answered an unknown code ${String(code)}`);
    }
    await this.db.query(
      `WITH r AS (
         INSERT INTO reservations (id, status, customer_id, expires_at) VALUES ($1, 'HELD', $2, $3)
         ON CONFLICT (id) DO NOTHING RETURNING id)
       INSERT INTO reservation_lines (reservation_id, sku, quantity)
       SELECT r.id, l.sku, l.quantity FROM r, unnest($4::text[], $5::int[]) AS l (sku, quantity)`,
      [input.reservationId, input.customerId ?? null, input.expiresAt, skus, input.items.map((l) => l.quantity)],
    );
    return { alreadyHeld: code === ScriptCode.Already };
  }

  /** Gives back a reservation's hold and records its final status. Idempotent. */
  async release(rawId: string, skus: string[], status: ReleaseStatus, reason?: string): Promise<{ units: number }> {
    const reservationId = parse(reservationIdSchema, rawId, 'reservationId');
    parse(z.array(skuSchema).min(1).max(50), skus, 'skus');
    parse(releaseStatusSchema, status, 'status');
    await this.db.query(
      `UPDATE reservations SET status = $2, reason = COALESCE($3, reason), updated_at = now()
        WHERE id = $1 AND status IN ('PENDING', 'HELD')`,
      [reservationId, status, reason ?? null],
    );
    const [code, units] = await this.redis.stockRelease(skus.length * 3, ...lineKeys(skus), reservationId, this.now(), this.cutoff());
    return { units: code === ScriptCode.Applied ? units : 0 };
  }

  /**
   * Sells at most the held quantity of each line (all of it without `items`) and releases the
   * rest: the sale rows and totals in one PostgreSQL transaction first, then Redis.
   * Idempotent: a repeat finds the reservation COMMITTED and only re-applies Redis's step, which
   * is itself a no-op when already done.
   */
  async commit(rawId: string, rawItems?: Line[], paymentId?: string): Promise<{ lines: CommittedLine[] }> {
    const reservationId = parse(reservationIdSchema, rawId, 'reservationId');
    const items = rawItems === undefined ? undefined : parse(linesSchema, rawItems, 'items');
    const lines = await this.tx(async (c) => {
      const found = await c.query<{ status: string }>('SELECT status FROM reservations WHERE id = $1 FOR UPDATE', [reservationId]);
      const status = found.rows[0]?.status;
      if (!status) throw new StockholdError('RESERVATION_NOT_FOUND', `reservation ${reservationId} does not exist`, { reservationId });
      const rows = (
        await c.query<{ sku: string; quantity: number; committed_quantity: number }>(
          'SELECT sku, quantity, committed_quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY sku',
          [reservationId],
        )
      ).rows;
      if (status === 'COMMITTED') {
        return rows.map((r) => ({ sku: r.sku, quantity: r.quantity, committedQuantity: r.committed_quantity }));
      }
      if (status !== 'HELD') {
        throw new StockholdError(`RESERVATION_${status}` as 'RESERVATION_EXPIRED', `reservation ${reservationId} is ${status}`, { reservationId, status });
      }
      const wanted = new Map(items?.map((i) => [i.sku, i.quantity]));
      for (const item of items ?? []) {
        const held = rows.find((r) => r.sku === item.sku)?.quantity ?? 0;
        if (item.quantity > held) {
          throw new StockholdError('QUANTITY_EXCEEDS_HOLD', `commit of ${item.quantity} ${item.sku} exceeds the ${held} held`, {
            sku: item.sku,
            requested: item.quantity,
            held,
          });
        }
      }
      const committed = rows.map((r) => ({ sku: r.sku, quantity: r.quantity, committedQuantity: items ? (wanted.get(r.sku) ?? 0) : r.quantity }));
      for (const line of committed.filter((l) => l.committedQuantity > 0)) {
        await c.query(`INSERT INTO stock_movements (sku, kind, delta, reservation_id) VALUES ($1, 'sale', $2, $3)`, [
          line.sku,
          -line.committedQuantity,
          reservationId,
        ]);
        await c.query('UPDATE skus SET total = total - $2, updated_at = now() WHERE sku = $1', [line.sku, line.committedQuantity]);
      }
      await c.query(
        `UPDATE reservation_lines l SET committed_quantity = v.q
           FROM unnest($2::text[], $3::int[]) AS v (sku, q) WHERE l.reservation_id = $1 AND l.sku = v.sku`,
        [reservationId, committed.map((l) => l.sku), committed.map((l) => l.committedQuantity)],
      );
      await c.query(`UPDATE reservations SET status = 'COMMITTED', payment_id = $2, updated_at = now() WHERE id = $1`, [
        reservationId,
        paymentId ?? null,
      ]);
      return committed;
    });
    const skus = lines.map((l) => l.sku);
    const [code, line, held] = await this.redis.stockCommit(
      skus.length * 3,
      ...lineKeys(skus),
      reservationId,
      this.now(),
      this.cutoff(),
      ...lines.map((l) => l.committedQuantity),
    );
    if (code === ScriptCode.ExceedsHold) {
      // PostgreSQL and Redis disagree on what is held: the sale is durable; surface it loudly.
      throw new Error(`commit.lua: ${lines[line - 1]?.sku} holds ${held} in Redis, fewer than the durable sale`);
    }
    return { lines };
  }

  /** Moves a HELD reservation's deadline in PostgreSQL (the workflow's timer is the real one). */
  async extend(rawId: string, expiresAt: string): Promise<void> {
    const reservationId = parse(reservationIdSchema, rawId, 'reservationId');
    const deadline = parse(expiresAtSchema, expiresAt, 'expiresAt');
    await this.db.query(`UPDATE reservations SET expires_at = $2, updated_at = now() WHERE id = $1 AND status = 'HELD'`, [reservationId, deadline]);
  }

  // ---------------------------------------------------------------- rebuild

  /**
   * Loads every SKU's counters from PostgreSQL: total from `skus`, holds from HELD reservations.
   * Mode "missing" only fills SKUs that have no counters, so it is safe beside live traffic;
   * "force" overwrites (use only when nothing is in flight).
   */
  async rebuild(mode: 'missing' | 'force' = 'missing'): Promise<{ skus: number; loaded: number }> {
    const result = await this.db.query<{ sku: string; name: string; total: string; holds: [string, number][] }>(
      `SELECT s.sku, s.name, s.total,
              COALESCE(json_agg(json_build_array(h.reservation_id, h.quantity)) FILTER (WHERE h.reservation_id IS NOT NULL), '[]') AS holds
         FROM skus s
         LEFT JOIN (SELECT l.sku, l.reservation_id, l.quantity FROM reservation_lines l
                      JOIN reservations r ON r.id = l.reservation_id AND r.status = 'HELD') h ON h.sku = s.sku
        GROUP BY s.sku`,
    );
    let loaded = 0;
    for (const row of result.rows) {
      const [code] = await this.redis.stockLoad(2, keys.stock(row.sku), keys.holds(row.sku), mode, row.total, row.name, ...row.holds.flat());
      if (code === ScriptCode.Applied) loaded += 1;
    }
    await this.redis.set(keys.loaded, new Date(this.now()).toISOString());
    return { skus: result.rowCount ?? 0, loaded };
  }

  /** Rebuilds when Redis lost its data (the `loaded` marker is gone). Returns whether it rebuilt. */
  async ensureLoaded(): Promise<boolean> {
    if ((await this.redis.exists(keys.loaded)) === 1) return false;
    await this.rebuild('missing');
    return true;
  }

  // ---------------------------------------------------------------- helpers

  private cutoff(): number {
    return this.now() - this.retentionMs;
  }

  private notLoaded(): StockholdError {
    return unavailable('stock counters are not loaded in Redis yet (rebuilding from PostgreSQL); retry shortly');
  }

  /** A SKU without counters: unknown (404) while Redis is loaded, otherwise Redis lost its data (503). */
  private async missingCounters(sku: string): Promise<StockholdError> {
    if ((await this.redis.exists(keys.loaded)) === 1) {
      return new StockholdError('SKU_NOT_FOUND', `SKU ${sku} does not exist`, { sku });
    }
    return this.notLoaded();
  }

  /** Applies a recorded raise (restock/return) to Redis; a SKU not loaded waits for the rebuild. */
  private async applyRaise(sku: string, movementId: string, quantity: number): Promise<void> {
    await this.redis.stockRestock(2, keys.stock(sku), keys.done(sku), movementId, quantity, this.now(), this.cutoff());
  }

  private async tx<T>(work: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.db.connect();
    try {
      await c.query('BEGIN');
      const result = await work(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /**
   * Runs `work` in a transaction under an optional Idempotency-Key: the first request's answer is
   * stored in the same transaction; a repeat with the same request gets it back (`fresh` false)
   * and changes nothing; another request under the same key is IDEMPOTENCY_KEY_REUSED.
   */
  private async idempotent<T>(rawKey: unknown, request: unknown, work: (c: PoolClient) => Promise<T>): Promise<{ result: T; fresh: boolean }> {
    const { result, fresh } = await this.idempotentMovement(rawKey, request, async (c) => ({ result: await work(c), movementId: '' }));
    return { result, fresh };
  }

  private async idempotentMovement<T>(
    rawKey: unknown,
    request: unknown,
    work: (c: PoolClient) => Promise<{ result: T; movementId: string }>,
  ): Promise<{ result: T; fresh: boolean; movementId: string }> {
    const key = rawKey === undefined ? undefined : parse(idempotencyKeySchema, rawKey, 'Idempotency-Key');
    const hash = createHash('sha256').update(canonical(request)).digest('hex');
    try {
      return await this.tx(async (c) => {
        if (key !== undefined) {
          // Serialises requests sharing a key; the second one sees the first one's stored answer.
          await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
          const stored = await c.query<{ request_hash: string; response: T }>('SELECT request_hash, response FROM idempotency_keys WHERE key = $1', [key]);
          const row = stored.rows[0];
          if (row) {
            if (row.request_hash !== hash) {
              throw new StockholdError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request', { idempotencyKey: key });
            }
            return { result: row.response, fresh: false, movementId: '' };
          }
        }
        const done = await work(c);
        if (key !== undefined) {
          await c.query('INSERT INTO idempotency_keys (key, request_hash, response) VALUES ($1, $2, $3)', [key, hash, JSON.stringify(done.result)]);
        }
        return { ...done, fresh: true };
      });
    } catch (err) {
      if (isUniqueViolation(err) && (err as { constraint?: string }).constraint === 'skus_pkey') {
        const sku = (request as { input?: { sku?: string } }).input?.sku;
        throw new StockholdError('SKU_EXISTS', `SKU ${sku} already exists`, { sku });
      }
      throw err;
    }
  }
}
