/**
 * The one door to Redis: every script call (keys and arguments built here, replies decoded into
 * typed results, refusals through scriptRefusal) and every direct read of the counters. The key
 * layout is keys.ts; the scripts are lua/ (loaded by scripts.ts).
 */
import calculateSlot from 'cluster-key-slot';
import type { Allocation, AllocationStrategy, CartLine } from '../../domain/types';
import { CounterRepairs, outcome, type StockCounts } from './counter-repairs';
import { keys, lineKeys, parseAllocation } from './keys';
import { transferShort } from '../../domain/errors';
import { ScriptCode, scriptRefusal, type ScriptReply, type StockRedis } from './scripts';

/** A line of a commit: units sold, and its `sale` movements, one per location sold from (none when it sells nothing). */
export interface SaleLine {
  sku: string;
  committedQuantity: number;
  movements: SaleMovement[];
}

/** One `sale` movement of a line: its id, and the units it took at its location. */
export interface SaleMovement {
  id: string;
  locationId: string;
  units: number;
}

/** The locations a cart is held through, in order, and how a line picks among them (a channel). */
export interface ChannelSpec {
  locations: readonly string[];
  strategy: AllocationStrategy;
}

/** The channel's two arguments of hold.lua and precheck.lua ('' '' for every level of each SKU). */
const channelArgs = (channel?: ChannelSpec): string[] =>
  channel ? [channel.locations.join(','), channel.strategy] : ['', ''];

/**
 * Typed calls of the scripts and reads of the counters over one client. `now` and the retention of
 * the `done` guard are the store's: `done` entries older than `retentionMs` are forgotten inside
 * the scripts. Refusals are thrown through `scriptRefusal`; NotLoaded always as CountersMissing
 * (transient: retry once the counters are rebuilt), never skipped.
 */
export class Counters extends CounterRepairs {
  constructor(
    redis: StockRedis,
    private readonly retentionMs: number,
    private readonly now: () => number,
  ) {
    super(redis);
  }

  /**
   * The cart split by Redis Cluster slot (a script touches one slot): one group on a single Redis,
   * so a whole cart is one atomic script there. Line order is kept within and across groups.
   */
  private groups<T extends { sku: string }>(lines: readonly T[]): T[][] {
    if (!(this.redis as { isCluster?: boolean }).isCluster) return [[...lines]];
    const bySlot = new Map<number, T[]>();
    for (const line of lines) {
      const slot = calculateSlot(keys.stock(line.sku));
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), line]);
    }
    return [...bySlot.values()];
  }

  // ---------------------------------------------------------------- scripts

  /**
   * What hold.lua would decide for the cart now, changing nothing (precheck.lua): the first refusal
   * in line order (slot group by slot group on a cluster), or `repeat` when the reservation holds
   * or finished on one of the lines; and per line the units available and, on a SKU limited per
   * customer, the units the customer may still take.
   */
  async precheck(
    reservationId: string,
    items: readonly CartLine[],
    customerId = '',
    channel?: ChannelSpec,
  ): Promise<{ refusal?: Error; repeat: boolean; available: number[]; allowance: (number | undefined)[] }> {
    const available: number[] = [];
    const allowance: (number | undefined)[] = [];
    let repeat = false;
    let refusal: { at: number; error: Error } | undefined;
    for (const group of this.groups(items.map((line, at) => ({ ...line, at })))) {
      const reply = await this.redis.stockPrecheck(
        group.length * 4,
        ...lineKeys(group.map((l) => l.sku)),
        reservationId,
        customerId,
        ...channelArgs(channel),
        ...group.flatMap((l) => [l.quantity, l.locationId ?? '']),
      );
      const [code, line, f1, f2, f3] = reply.map((n) => n ?? 0) as number[];
      group.forEach((l, i) => {
        available[l.at] = reply[5 + 2 * i] ?? 0;
        allowance[l.at] = reply[6 + 2 * i] ?? undefined;
      });
      if (code === ScriptCode.AlreadyApplied) repeat = true;
      else if (code !== ScriptCode.Applied) {
        const at = group[line! - 1]!.at;
        if (!refusal || at < refusal.at)
          refusal = {
            at,
            error: scriptRefusal([code!, at + 1, f1!, f2!, f3!], {
              script: 'precheck',
              reservationId,
              items,
              customerId,
            }),
          };
      }
    }
    return { ...(refusal && !repeat ? { refusal: refusal.error } : {}), repeat, available, allowance };
  }

  /**
   * Holds every line or none, for one workflow `run`, through `channel` (absent: every level of
   * each SKU). `alreadyHeld` when it held them before (a retry); `allocations`, per line in line
   * order, where Redis holds it. On a cluster the cart is held slot group by slot group; when a
   * group is refused, the groups taken before it are given back (no tombstone: the id stays
   * usable), so the caller still sees all or nothing.
   */
  async hold(
    reservationId: string,
    run: string,
    items: readonly CartLine[],
    customerId = '',
    channel?: ChannelSpec,
  ): Promise<{ alreadyHeld: boolean; newlyHeld: CartLine[]; allocations: Allocation[][] }> {
    const taken: CartLine[][] = [];
    const newlyHeld: CartLine[] = [];
    const allocations = new Map<CartLine, Allocation[]>();
    for (const group of this.groups(items)) {
      const skus = group.map((l) => l.sku);
      const reply = (await this.redis.stockHold(
        skus.length * 4,
        ...lineKeys(skus),
        reservationId,
        run,
        customerId,
        ...channelArgs(channel),
        ...group.flatMap((l) => [l.quantity, l.locationId ?? '']),
      )) as ScriptReply;
      if (outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyApplied)) {
        if (reply[0] === ScriptCode.Applied) newlyHeld.push(...group);
        group.forEach((l, i) => allocations.set(l, parseAllocation(String(reply[3 + i] ?? ''))));
        taken.push(group);
        continue;
      }
      for (const done of taken)
        await this.release(
          reservationId,
          done.map((l) => l.sku),
          '',
        );
      throw scriptRefusal(reply, { script: 'hold', reservationId, items: group, customerId });
    }
    return {
      alreadyHeld: newlyHeld.length === 0,
      newlyHeld,
      allocations: items.map((l) => allocations.get(l) ?? []),
    };
  }

  /**
   * Gives back what the reservation holds on these SKUs; the units released (0 when nothing was
   * held). `tombstone` (see release.lua) keeps late holds out: the id once final, id@run when
   * one run gave up, '' for none. Slot group by slot group on a cluster; idempotent.
   */
  async release(reservationId: string, skus: readonly string[], tombstone: string): Promise<{ units: number }> {
    let units = 0;
    for (const group of this.groups(skus.map((sku) => ({ sku })))) {
      const now = this.now();
      const groupSkus = group.map((l) => l.sku);
      const reply = await this.redis.stockRelease(
        groupSkus.length * 4,
        ...lineKeys(groupSkus),
        reservationId,
        now,
        now - this.retentionMs,
        tombstone,
      );
      if (reply[0] === ScriptCode.Applied) units += reply[1];
      else if (reply[0] !== ScriptCode.Unchanged) {
        // release.lua answers the line without counters in the second figure.
        throw scriptRefusal([reply[0], reply[1], 0], {
          script: 'release',
          reservationId,
          items: groupSkus.map((sku) => ({ sku, quantity: 0 })),
        });
      }
    }
    return { units };
  }

  /**
   * Applies durable sales to Redis: holds released, totals lowered once, and on limited SKUs the
   * sales added to what `customerId` bought, with them. `alreadyFinished` for a retry.
   */
  async commit(
    reservationId: string,
    lines: readonly SaleLine[],
    customerId = '',
  ): Promise<{ alreadyFinished: boolean }> {
    let finished = true;
    for (const group of this.groups(lines)) {
      const now = this.now();
      const skus = group.map((l) => l.sku);
      const perLine = group.flatMap((l) => [
        l.committedQuantity,
        l.movements.map((m) => `${m.id}@${m.locationId}@${m.units}`).join(';'),
      ]);
      const reply = await this.redis.stockCommit(
        skus.length * 4,
        ...lineKeys(skus),
        reservationId,
        now,
        now - this.retentionMs,
        customerId,
        ...perLine,
      );
      if (!outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyFinished)) {
        throw scriptRefusal(reply, {
          script: 'commit',
          reservationId,
          items: group.map((l) => ({ sku: l.sku, quantity: l.committedQuantity })),
        });
      }
      finished &&= reply[0] === ScriptCode.AlreadyFinished;
    }
    return { alreadyFinished: finished };
  }

  /**
   * Applies a durable ledger movement to total, once per movement id; a sale's or return's
   * `customerId` (of its reservation) has its bought count moved with it on a limited SKU.
   */
  async move(
    sku: string,
    movementId: string,
    delta: number,
    customerId = '',
    locationId = '',
  ): Promise<StockCounts & { alreadyApplied: boolean }> {
    const reply = await this.redis.stockMove(
      3,
      keys.stock(sku),
      keys.holds(sku),
      keys.customers(sku),
      movementId,
      delta,
      customerId,
      locationId,
    );
    if (outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyApplied)) {
      return { total: reply[1], reserved: reply[2], alreadyApplied: reply[0] === ScriptCode.AlreadyApplied };
    }
    throw scriptRefusal(reply, { script: 'move', sku });
  }

  /** Lowers total (at `locationId`) by -`delta` unless that leaves it (there) below reserved; once per movement id. */
  async adjust(
    sku: string,
    movementId: string,
    delta: number,
    locationId = '',
  ): Promise<StockCounts & { alreadyApplied: boolean }> {
    const reply = await this.redis.stockAdjust(1, keys.stock(sku), movementId, delta, locationId);
    if (outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyApplied)) {
      return { total: reply[1], reserved: reply[2], alreadyApplied: reply[0] === ScriptCode.AlreadyApplied };
    }
    throw scriptRefusal(reply, { script: 'adjust', sku, delta });
  }

  /**
   * Applies a transfer's two movements (durable in PostgreSQL) to the levels, once: `from`'s free
   * units must cover it. Refused with WouldOversell (`available` at `from`) otherwise.
   */
  async transfer(
    sku: string,
    movements: { out: string; in: string },
    from: string,
    to: string,
    quantity: number,
  ): Promise<{ alreadyApplied: boolean }> {
    const reply = await this.redis.stockTransfer(1, keys.stock(sku), movements.out, movements.in, from, to, quantity);
    if (outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyApplied))
      return { alreadyApplied: reply[0] === ScriptCode.AlreadyApplied };
    if (reply[0] === ScriptCode.WouldOversell) throw transferShort(sku, from, quantity, reply[1]);
    throw scriptRefusal(reply, { script: 'transfer', sku });
  }
}

export type { StockCounts, SkuFigures } from './counter-repairs';
