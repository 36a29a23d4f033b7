/**
 * The counters as Redis has them, read directly (no script): a SKU's fields, its holds, everything
 * of a SKU for the reconciler, the loaded marker; and the rebuild's fence and marker. Counters
 * (./counters.ts) adds the scripts; together they are the one door to Redis.
 */
import type { Allocation, Bundle, Channel } from '../../domain/types';
import { keys, parseAllocation, type LevelFigures } from './keys';

/** How a channel is kept in Redis (stockhold:channels): its JSON without the name, which is the field. */
export const channelText = (c: Channel): string => JSON.stringify({ locations: c.locations, strategy: c.strategy });
/** How a bundle is kept in Redis (stockhold:bundles): its JSON without the id, which is the field. */
export const bundleText = (b: Bundle): string => JSON.stringify({ name: b.name, components: b.components });
import type { StockRedis } from './scripts';

export class CounterReads {
  constructor(readonly redis: StockRedis) {}

  // ---------------------------------------------------------------- reads

  /** Whether the counters are loaded from PostgreSQL (the marker; gone after a loss until the rebuild sets it). */
  async loaded(): Promise<boolean> {
    return (await this.redis.exists(keys.loaded)) === 1;
  }

  /**
   * These fields of each SKU's stock hash (null where absent; a SKU without counters has a null
   * `total`): one HMGET per SKU, which auto-pipelining sends in one round trip per node (a
   * pipeline of its own could not span the slots of a Redis Cluster).
   */
  stockFields<F extends string>(skus: readonly string[], fields: readonly F[]): Promise<(string | null)[][]> {
    return Promise.all(skus.map((sku) => this.redis.hmget(keys.stock(sku), ...fields)));
  }

  /** A channel as Redis has it (PostgreSQL's, as of its last write); undefined when Redis has none. */
  async channel(name: string): Promise<Omit<Channel, 'channel'> | undefined> {
    const text = await this.redis.hget(keys.channels, name);
    return text === null ? undefined : (JSON.parse(text) as Omit<Channel, 'channel'>);
  }

  /** Every channel Redis has, raw (name -> JSON), for the reconciler's comparison. */
  channelsRaw(): Promise<Record<string, string>> {
    return this.redis.hgetall(keys.channels);
  }

  /** A bundle as Redis has it (PostgreSQL's, as of its last write); undefined when Redis has none. */
  async bundle(sku: string): Promise<Bundle | undefined> {
    const text = await this.redis.hget(keys.bundles, sku);
    return text === null ? undefined : { sku, ...(JSON.parse(text) as Omit<Bundle, 'sku'>) };
  }

  /** Every bundle Redis has, raw (id -> JSON), for the reconciler's comparison. */
  bundlesRaw(): Promise<Record<string, string>> {
    return this.redis.hgetall(keys.bundles);
  }

  /** These levels of a SKU from their own fields (`t:`/`r:`), for a hash that has no `lv` yet. */
  async levels(sku: string, locations: readonly string[]): Promise<LevelFigures[]> {
    const v = await this.redis.hmget(keys.stock(sku), ...locations.flatMap((l) => [`t:${l}`, `r:${l}`]));
    return locations.map((locationId, k) => ({
      locationId,
      total: Number(v[2 * k] ?? 0),
      reserved: Number(v[2 * k + 1] ?? 0),
    }));
  }

  /** The units Redis counts as held of a SKU (0 without counters). */
  async reserved(sku: string): Promise<number> {
    return Number((await this.redis.hget(keys.stock(sku), 'reserved')) ?? 0);
  }

  /**
   * Where these holds of a SKU are (their `a:<id>` fields, lua/includes/levels.lua); a hold
   * without one is at `default` whole, and is left out of the map.
   */
  async allocations(sku: string, holds: Record<string, number>): Promise<Map<string, Allocation[]>> {
    const ids = Object.keys(holds);
    const found = new Map<string, Allocation[]>();
    if (ids.length === 0) return found;
    const specs = await this.redis.hmget(keys.stock(sku), ...ids.map((id) => `a:${id}`));
    ids.forEach((id, i) => {
      const spec = specs[i];
      if (spec) found.set(id, parseAllocation(spec));
    });
    return found;
  }

  /** A SKU's holds (reservation id → units), or undefined when it has no counters; read in one step. */
  async holds(sku: string): Promise<Record<string, number> | undefined> {
    const [[, exists], [, held]] = ((await this.redis
      .multi()
      .exists(keys.stock(sku))
      .hgetall(keys.holds(sku))
      .exec()) ?? []) as [[unknown, number], [unknown, Record<string, string>]];
    if (exists !== 1) return undefined;
    return Object.fromEntries(Object.entries(held).map(([id, quantity]) => [id, Number(quantity)]));
  }

  /** Everything Redis keeps of a SKU, raw, as the reconciler compares it: its stock, holds and customers hashes. */
  async raw(
    sku: string,
  ): Promise<{ stock: Record<string, string>; holds: Record<string, string>; customers: Record<string, string> }> {
    const [stock, holds, customers] = await Promise.all([
      this.redis.hgetall(keys.stock(sku)),
      this.redis.hgetall(keys.holds(sku)),
      this.redis.hgetall(keys.customers(sku)),
    ]);
    return { stock, holds, customers };
  }

  // ---------------------------------------------------------------- reservations let into Temporal

  /**
   * Notes that a reservation's first request went into Temporal (by the first SKU of its cart),
   * until `untilMs`, so a repeat meanwhile is taken to its workflow rather than refused (its hold
   * may not have landed yet). Expired notes of the SKU go with it.
   */
  async notePending(sku: string, reservationId: string, nowMs: number, untilMs: number): Promise<void> {
    await this.redis
      .multi()
      .zadd(keys.pending(sku), untilMs, reservationId)
      .zremrangebyscore(keys.pending(sku), '-inf', `(${nowMs}`)
      .exec();
  }

  /** Whether a reservation's first request went into Temporal and its note has not expired. */
  async isPending(sku: string, reservationId: string, nowMs: number): Promise<boolean> {
    const until = await this.redis.zscore(keys.pending(sku), reservationId);
    return until !== null && Number(until) >= nowMs;
  }

  // ---------------------------------------------------------------- the rebuild's fence and marker

  /** Takes the rebuild's fence for `ms` with `token`; false when another process holds it. */
  async takeRebuildFence(token: string, ms: number): Promise<boolean> {
    return (await this.redis.set(keys.rebuildFence, token, 'PX', ms, 'NX')) === 'OK';
  }

  /** Drops the rebuild's fence if it is still `token`'s (compare and delete in one step). */
  async releaseRebuildFence(token: string): Promise<void> {
    await this.redis.stockReleaseFence(1, keys.rebuildFence, token);
  }

  /** Sets the loaded marker: every SKU's counters are loaded from PostgreSQL. */
  async markLoaded(note: string): Promise<void> {
    await this.redis.set(keys.loaded, note);
  }
}
