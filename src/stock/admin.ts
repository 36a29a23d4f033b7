/**
 * The stock module's admin writes: new SKUs, restocks, adjustments, settings and returns, each
 * PostgreSQL first (with its Idempotency-Key's stored answer), then Redis (a lowering adjustment's
 * Redis check inside the PostgreSQL transaction, so a refusal rolls it back). StockStore
 * (./store.ts) adds the reservations' steps.
 */
import type { PoolClient } from 'pg';
import { StockholdError, wouldOversell } from '../domain/errors';
import {
  DEFAULT_CHANNEL,
  DEFAULT_LOCATION,
  stockView,
  type Bundle,
  type BundleComponent,
  type CartLine,
  type Channel,
  type Location,
  type ReturnResult,
  type SkuRow,
  type StockView,
} from '../domain/types';
import { transaction } from './database';
import { idempotent } from './idempotency';
import { StockReads } from './reads';

/** How long a write waits for Redis to take a durable movement before answering without it. */
const APPLY_PATIENCE_MS = 2_000;

export class StockAdmin extends StockReads {
  // ---------------------------------------------------------------- admin writes

  /**
   * Creates a SKU with its initial stock (ledger `initial`), at `default` (`total`) or at each of
   * `locations` (contract v3), then loads its counters.
   */
  async createSku(
    input: { sku: string; total?: number; locations?: Record<string, number>; name?: string },
    idempotencyKey?: string,
  ): Promise<StockView> {
    const name = input.name ?? '';
    const levels: [string, number][] = input.locations
      ? Object.entries(input.locations)
      : [[DEFAULT_LOCATION, input.total ?? 0]];
    const total = levels.reduce((sum, [, units]) => sum + units, 0);
    const { result, fresh, movementIds } = await idempotent(
      this.db,
      idempotencyKey,
      { op: 'createSku', input },
      async (c) => {
        const created = await this.ledger.movements.createSku(c, input.sku, name, levels);
        return { result: stockView(input.sku, name, total, 0), movementIds: created.movementIds };
      },
    );
    // A new SKU has no holds; "force" clears counters a previous life may have left in Redis. A
    // repeat loads it only if Redis missed it. Its levels go with it unless it is all at `default`.
    const spread = levels.some(([locationId]) => locationId !== DEFAULT_LOCATION);
    await this.counters.load(
      input.sku,
      {
        total,
        name,
        mark: movementIds.at(-1) ?? '0',
        holds: [],
        levels: spread ? levels.map(([id, units]) => `${id}=${units}`).join(',') : '',
      },
      fresh ? 'force' : 'missing',
    );
    return result;
  }

  /**
   * Moves unreserved units of a SKU between two of its locations (contract v3): two movements
   * sharing a transferId in PostgreSQL and transfer.lua in Redis, inside the same transaction, so
   * either store's refusal (WOULD_OVERSELL: `from` has fewer units free, reserved ones never move)
   * rolls it back.
   */
  async transfer(
    sku: string,
    input: { from: string; to: string; quantity: number; reason?: string },
    idempotencyKey?: string,
  ): Promise<StockView> {
    if (input.from === input.to)
      throw new StockholdError('INVALID_REQUEST', 'to: must differ from from', { field: 'to' });
    const { result } = await idempotent(this.db, idempotencyKey, { op: 'transfer', sku, input }, async (c) => {
      const row = await this.ledger.skus.lockSku(c, sku);
      const moved = await this.ledger.movements.transfer(c, sku, input);
      await this.counters
        .transfer(sku, { out: moved.out.id, in: moved.in.id }, input.from, input.to, input.quantity)
        .catch(async (err: unknown) => {
          throw await this.explainMissing(err);
        });
      return { result: stockView(sku, row.name, row.total, await this.reservedOf(sku), row), movementIds: [] };
    });
    return result;
  }

  /**
   * A new location (contract v3); LOCATION_EXISTS when the id is taken. The channel `default`, which
   * takes in every location while no admin has put it, is written to Redis again with it.
   */
  async createLocation(input: { locationId: string; name: string }): Promise<Location> {
    const location = await this.ledger.locations.create(input.locationId, input.name);
    await this.mirrorChannel(await this.ledger.locations.channel(DEFAULT_CHANNEL));
    return location;
  }

  /** Replaces or creates a channel (PostgreSQL, then Redis's copy); LOCATION_NOT_FOUND for a location that does not exist. */
  async putChannel(channel: Channel): Promise<Channel> {
    const put = await this.ledger.locations.putChannel(channel);
    await this.mirrorChannel(put);
    return put;
  }

  /**
   * Creates or replaces a bundle (contract v3): PostgreSQL, then Redis's copy, which the bundle
   * reads use (a Redis that fails here is put right by the reconciler, as a channel's copy is).
   */
  async putBundle(sku: string, input: { name?: string; components: BundleComponent[] }): Promise<Bundle> {
    const bundle = await this.ledger.bundles.put(sku, input.name, input.components);
    this.bundleCache.clear();
    await this.counters
      .putBundles([bundle])
      .catch((err: unknown) =>
        this.warn('bundle not written to Redis; the reconciler will', { sku, err: String(err) }),
      );
    return bundle;
  }

  /**
   * Redis's copy of a channel, after PostgreSQL committed it. A Redis that fails here leaves the
   * old copy, which the reconciler puts right (it compares every channel each scan); the write is
   * durable, so it is answered as done.
   */
  private async mirrorChannel(channel: Channel): Promise<void> {
    // This process's holds see the write at once; other processes within CHANNEL_CACHE_MS.
    this.channelCache.clear();
    await this.counters
      .putChannels([channel])
      .catch((err: unknown) =>
        this.warn('channel not written to Redis; the reconciler will', { channel: channel.channel, err: String(err) }),
      );
  }

  /** Raises total by `quantity` (ledger `restock`): PostgreSQL first, then Redis. */
  async restock(
    sku: string,
    input: { quantity: number; reason?: string; locationId?: string },
    idempotencyKey?: string,
  ): Promise<StockView> {
    const { result, movementIds } = await idempotent(
      this.db,
      idempotencyKey,
      { op: 'restock', sku, input },
      async (c) => {
        await this.ledger.skus.lockSku(c, sku);
        const { locationId } = await this.ledger.movements.levelFor(c, sku, input.locationId);
        const moved = await this.ledger.movements.move(c, {
          sku,
          kind: 'restock',
          delta: input.quantity,
          reason: input.reason,
          locationId,
        });
        return {
          result: stockView(sku, moved.name, moved.total, await this.reservedOf(sku), moved),
          movementIds: [moved.movementId],
        };
      },
    );
    await this.applyMovements(movementIds);
    return result;
  }

  /**
   * Changes total by a signed delta (ledger `adjustment`). A lowering runs its Redis check
   * (`total + delta >= reserved`) inside the PostgreSQL transaction, so a refusal rolls the ledger
   * row back; a raise goes PostgreSQL first, then Redis, as a restock does.
   */
  async adjust(
    sku: string,
    input: { delta: number; reason: string; locationId?: string },
    idempotencyKey?: string,
  ): Promise<StockView> {
    const { result, movementIds, fresh } = await idempotent(
      this.db,
      idempotencyKey,
      { op: 'adjust', sku, input },
      async (c) => {
        const current = await this.ledger.skus.lockSku(c, sku);
        // PostgreSQL's own HELD units count too: Redis may have lost a hold that is still promised.
        if (current.total + input.delta < Math.max(current.reserved, 0)) {
          throw wouldOversell(sku, current.total, Math.max(current.reserved, await this.reservedOf(sku)), input.delta);
        }
        // Judged per location too (contract v3): the level may not go below its own reserved.
        const level = await this.ledger.movements.levelFor(c, sku, input.locationId);
        if (level.total + input.delta < level.reserved) {
          const refusal = wouldOversell(sku, level.total, level.reserved, input.delta);
          refusal.details.locationId = level.locationId;
          throw refusal;
        }
        const { movementId, total } = await this.ledger.movements.move(c, {
          sku,
          kind: 'adjustment',
          delta: input.delta,
          reason: input.reason,
          locationId: level.locationId,
        });
        if (input.delta > 0)
          return {
            result: stockView(sku, current.name, total, await this.reservedOf(sku), current),
            movementIds: [movementId],
          };
        // If the transaction rolls back after this ran (Redis answered too late, COMMIT failed), Redis
        // is below PostgreSQL (never above) by a movement PostgreSQL never recorded: the reconciler
        // finds it (adjust.lua keeps its delta) and undoes it (rolled_back_movement).
        const figures = await this.counters
          .adjust(sku, movementId, input.delta, level.locationId)
          .catch(async (err: unknown) => {
            throw await this.explainMissing(err);
          });
        return { result: stockView(sku, current.name, total, figures.reserved, current), movementIds: [movementId] };
      },
    );
    if (input.delta > 0 || !fresh) await this.applyMovements(movementIds);
    return result;
  }

  /**
   * Changes a SKU's name and settings (PATCH: the fields given; null unsets a setting). Redis
   * takes them inside the PostgreSQL transaction, under the SKU's row lock, so a refusal or an
   * unreachable Redis changes nothing, and the bought counts a limit needs are a snapshot no sale
   * or return can slip past (see `applySettings`).
   */
  async updateSku(
    sku: string,
    patch: { name?: string; lowStockThreshold?: number | null; maxPerCustomer?: number | null },
  ): Promise<StockView> {
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
  async recordReturn(
    input: { reservationId: string; items: CartLine[]; reason?: string; locationId?: string },
    idempotencyKey?: string,
  ): Promise<ReturnResult> {
    const { result, movementIds } = await idempotent(this.db, idempotencyKey, { op: 'return', input }, async (c) => {
      if (input.locationId !== undefined) await this.ledger.movements.locationsExist(c, [input.locationId]);
      const movementIds = await this.ledger.reservations.recordReturn(
        c,
        input.reservationId,
        input.items,
        input.reason,
        input.locationId,
      );
      // Redis must answer before the return commits (as a restock's does): with Redis down the
      // return is 503 and changes nothing, rather than recorded with Redis left behind.
      await this.counters.loaded();
      return {
        result: {
          reservationId: input.reservationId,
          items: input.items.map((i) => ({ sku: i.sku, returnedQuantity: i.quantity })),
        },
        movementIds,
      };
    });
    await this.applyMovements(movementIds);
    return result;
  }

  /**
   * Makes sure Redis has these durable movements (idempotent by id), retrying briefly while its
   * counters are missing or it does not answer. The write is durable either way: if Redis stays
   * behind, the reconciler applies the movement after its grace period.
   */
  protected async applyMovements(movementIds: readonly string[]): Promise<void> {
    if (movementIds.length === 0) return;
    const movements = await this.ledger.movements.movementsById(movementIds);
    const until = this.now() + APPLY_PATIENCE_MS;
    for (const movement of movements) {
      for (;;) {
        try {
          await this.counters.move(
            movement.sku,
            movement.id,
            movement.delta,
            movement.customerId ?? '',
            movement.locationId,
          );
          break;
        } catch (err) {
          if (this.now() > until) {
            this.warn('Redis did not take a durable movement; the reconciler will apply it', {
              movement,
              error: String(err),
            });
            return;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  }
}
