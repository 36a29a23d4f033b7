/**
 * The scripts that put Redis right from PostgreSQL (the reconciler's repairs, the rebuild, a
 * SKU's settings): loading a SKU, restoring a lost hold, fixing `reserved` or the customers'
 * counts, rebasing a total, setting the settings. Counters (./counters.ts) adds the steps of a
 * reservation and of a movement; CounterReads (./counter-reads.ts) the plain reads.
 */
import type { Bundle, Channel, SkuSettings } from '../../domain/types';
import { bundleText, channelText, CounterReads } from './counter-reads';
import { keys } from './keys';
import { ScriptCode, scriptRefusal, type ScriptReply } from './scripts';

/** Counters a script leaves behind: a SKU's total and reserved units. */
export interface StockCounts {
  total: number;
  reserved: number;
}

/** Channels as stockhold:channels keeps them: name -> JSON. */
const channelFields = (channels: readonly Channel[]) =>
  Object.fromEntries(channels.map((c) => [c.channel, channelText(c)]));
/** Bundles as stockhold:bundles keeps them: id -> JSON. */
const bundleFields = (bundles: readonly Bundle[]) => Object.fromEntries(bundles.map((b) => [b.sku, bundleText(b)]));

export const outcome = (reply: ScriptReply, ...codes: ScriptCode[]) => codes.includes(reply[0]);

export class CounterRepairs extends CounterReads {
  /** Writes these channels into Redis as PostgreSQL has them (the mirror the reads use). */
  putChannels(channels: readonly Channel[]): Promise<void> {
    return this.mirrorPut(keys.channels, channelFields(channels));
  }

  /** Makes Redis's channels exactly these (the reconciler's repair). */
  replaceChannels(channels: readonly Channel[]): Promise<void> {
    return this.mirrorReplace(keys.channels, channelFields(channels));
  }

  /** Writes these bundles into Redis as PostgreSQL has them (the mirror the bundle reads use). */
  putBundles(bundles: readonly Bundle[]): Promise<void> {
    return this.mirrorPut(keys.bundles, bundleFields(bundles));
  }

  /** Makes Redis's bundles exactly these (the reconciler's repair). */
  replaceBundles(bundles: readonly Bundle[]): Promise<void> {
    return this.mirrorReplace(keys.bundles, bundleFields(bundles));
  }

  private async mirrorPut(key: string, fields: Record<string, string>): Promise<void> {
    if (Object.keys(fields).length > 0) await this.redis.hset(key, fields);
  }

  /** One MULTI, so no read sees half of it. */
  private async mirrorReplace(key: string, fields: Record<string, string>): Promise<void> {
    const multi = this.redis.multi().del(key);
    if (Object.keys(fields).length > 0) multi.hset(key, fields);
    await multi.exec();
  }

  /**
   * Sets a SKU's counters and holds from a PostgreSQL snapshot. Mode "missing" loads only a SKU that
   * has no counters (safe beside live traffic); "force" replaces them. `loaded` false: left as it was.
   */
  async load(sku: string, snapshot: SkuFigures, mode: 'missing' | 'force'): Promise<StockCounts & { loaded: boolean }> {
    const reply = await this.redis.stockLoad(
      3,
      keys.stock(sku),
      keys.holds(sku),
      keys.customers(sku),
      mode,
      snapshot.total,
      snapshot.name,
      snapshot.mark,
      snapshot.maxPerCustomer ?? '',
      snapshot.lowStockThreshold ?? '',
      snapshot.holds.length,
      snapshot.levels ?? '',
      ...snapshot.holds.flatMap(([id, quantity, customerId, allocation]) => [
        id,
        quantity,
        customerId ?? '',
        allocation ?? '',
      ]),
      ...(snapshot.maxPerCustomer ? (snapshot.bought ?? []).flat() : []),
    );
    if (outcome(reply, ScriptCode.Applied, ScriptCode.Unchanged))
      return { total: reply[1], reserved: reply[2], loaded: reply[0] === ScriptCode.Applied };
    throw scriptRefusal(reply, { script: 'load', sku });
  }

  /**
   * Puts back a hold Redis lost (reserved follows through fixReserved): `restored`, `unchanged`
   * (it came back or finished meanwhile), or `short` when others hold the units now.
   */
  async restoreHold(
    sku: string,
    reservationId: string,
    quantity: number,
    customerId = '',
    allocation = '',
  ): Promise<'restored' | 'unchanged' | 'short'> {
    const reply = await this.redis.stockRestoreHold(
      4,
      keys.stock(sku),
      keys.holds(sku),
      keys.done(sku),
      keys.customers(sku),
      reservationId,
      quantity,
      customerId,
      allocation,
    );
    if (reply[0] === ScriptCode.Applied) return 'restored';
    if (outcome(reply, ScriptCode.Unchanged, ScriptCode.AlreadyFinished)) return 'unchanged';
    if (reply[0] === ScriptCode.Insufficient) return 'short';
    throw scriptRefusal(reply, { script: 'restore-hold', sku, reservationId });
  }

  /** Makes `reserved` the sum of the holds; the figures when it was wrong. */
  async fixReserved(sku: string): Promise<{ before: number; after: number } | undefined> {
    const reply = await this.redis.stockFixReserved(2, keys.stock(sku), keys.holds(sku));
    if (reply[0] === ScriptCode.Applied) return { before: reply[1], after: reply[2] };
    if (reply[0] === ScriptCode.Unchanged) return undefined;
    throw scriptRefusal(reply, { script: 'fix-reserved', sku });
  }

  /** Sets total and mark if total is still `observed` (compare-and-set); false when it moved. */
  async rebase(sku: string, observed: number, total: number, mark: string, levels = ''): Promise<boolean> {
    const reply = await this.redis.stockRebase(
      3,
      keys.stock(sku),
      keys.holds(sku),
      keys.customers(sku),
      observed,
      total,
      mark,
      levels,
    );
    if (outcome(reply, ScriptCode.Applied, ScriptCode.Unchanged)) return reply[0] === ScriptCode.Applied;
    throw scriptRefusal(reply, { script: 'rebase', sku });
  }

  /**
   * Sets a SKU's name and settings as PostgreSQL has them; with a limit, the bought counts are
   * replaced by `bought`, a snapshot up to the ledger position `bmark` taken under the SKU's row lock.
   */
  async settings(
    sku: string,
    settings: SkuSettings & { name: string },
    bmark: string,
    bought: readonly (readonly [string, number])[],
  ): Promise<StockCounts> {
    const reply = await this.redis.stockSettings(
      2,
      keys.stock(sku),
      keys.customers(sku),
      settings.name,
      settings.lowStockThreshold ?? '',
      settings.maxPerCustomer ?? '',
      bmark,
      ...(settings.maxPerCustomer ? bought.flat() : []),
    );
    if (reply[0] === ScriptCode.Applied) return { total: reply[1], reserved: reply[2] };
    throw scriptRefusal(reply, { script: 'settings', sku });
  }

  /**
   * Makes the customers' held counts the sums of their live holds again; `customerOf` maps held
   * reservations to their customers (PostgreSQL's), for holds whose o: field was lost. The fields changed.
   */
  async fixCustomers(sku: string, customerOf: readonly (readonly [string, string])[]): Promise<number> {
    const reply = await this.redis.stockFixCustomers(2, keys.holds(sku), keys.customers(sku), ...customerOf.flat());
    if (outcome(reply, ScriptCode.Applied, ScriptCode.Unchanged)) return reply[1];
    throw scriptRefusal(reply, { script: 'fix-customers', sku });
  }
}

/** A SKU as a PostgreSQL snapshot has it: what `load` sets. */
export interface SkuFigures extends Partial<SkuSettings> {
  total: number;
  name: string;
  /** The SKU's last ledger movement id in the snapshot: every movement up to it is in `total` (and in `bought`). */
  mark: string;
  /**
   * The HELD reservations' holds: reservation id, quantity, its customer when it names one, and
   * where its units are (`loc=units,…`; absent or '': `default` whole).
   */
  holds: readonly (readonly [string, number, (string | null)?, string?])[];
  /** The SKU's levels, `loc=total,…`, when it has one elsewhere than `default` ('' or absent: none). */
  levels?: string;
  /** With a limit: units each customer bought minus returned, up to `mark`. */
  bought?: readonly (readonly [string, number])[];
}
