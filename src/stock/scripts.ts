/**
 * The Redis Lua scripts of lua/ and everything about calling them, in one place (as BullMQ's
 * Scripts class does): loading (defineCommand, then EVALSHA), building KEYS and ARGV, decoding
 * each reply into a typed result, and `scriptRefusal`, the one function that turns a reply code
 * into an error. Callers never build keys or read raw replies.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import {
  customerIdRequired,
  customerLimitExceeded,
  insufficientStock,
  quantityExceedsHold,
  StockholdError,
  unavailable,
  wouldOversell,
} from '../domain/errors';
import type { CartLine, SkuSettings } from '../domain/types';
import { LUA_DIR } from '../paths';
import { keys, lineKeys } from './keys';

/**
 * Reply codes, one meaning each across every script; each script's header names the ones it
 * returns. Non-negative codes are outcomes, negative ones refusals.
 */
export enum ScriptCode {
  /** The change was made. */
  Applied = 1,
  /** Nothing needed changing (nothing held to release; counters already loaded). */
  Unchanged = 0,
  /** This very operation was applied before (a retry): nothing changed. */
  AlreadyApplied = 2,
  /** A line asks for more than is available. */
  Insufficient = -1,
  /** A SKU has no counters: unknown, or Redis lost its data. Never read as zero or as plenty. */
  NotLoaded = -2,
  /** The reservation was committed or released before. */
  AlreadyFinished = -3,
  /** A line would sell more than it holds. */
  ExceedsHold = -4,
  /** A line holds nothing for a reservation that never finished here. */
  NotHeld = -5,
  /** An adjustment would take total below reserved (or below zero). */
  WouldOversell = -6,
  /** The reservation holds another quantity of a line than the one asked for. */
  HeldOtherwise = -7,
  /** A line's SKU is limited per customer: the customer would exceed it, or none was given. */
  CustomerLimit = -8,
}

/**
 * Every reply is a list of integers: a ScriptCode, then two figures whose meaning depends on the
 * script (hold's CustomerLimit adds two more: see hold.lua).
 */
export type ScriptReply = [ScriptCode, number, number, ...number[]];

const SCRIPTS = ['hold', 'release', 'commit', 'move', 'adjust', 'load', 'restore-hold', 'fix-reserved', 'rebase', 'settings', 'fix-customers'] as const;
export type ScriptName = (typeof SCRIPTS)[number];

/**
 * A script's source with its includes inlined: a line `--- @include "includes/x"` (as BullMQ's
 * scripts have) is replaced by lua/includes/x.lua, so scripts share code yet each is one script.
 */
export function luaSource(name: ScriptName): string {
  return readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8').replace(/^--- @include "([\w/-]+)"$/gm, (_, include: string) =>
    readFileSync(path.join(LUA_DIR, `${include}.lua`), 'utf8'),
  );
}

/** The client commands `defineScripts` adds (EVALSHA, falling back to EVAL once): `stock` + the script's name in camel case. */
export interface ScriptCommands {
  stockHold(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockRelease(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockCommit(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockMove(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockAdjust(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockLoad(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockRestoreHold(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockFixReserved(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockRebase(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockSettings(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockFixCustomers(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
}

/** A client of one Redis or of a Redis Cluster, with the scripts defined. */
export type StockRedis = (Redis | Cluster) & ScriptCommands;

const commandName = (name: ScriptName) => `stock${name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase())}`;

/**
 * The script commands. ioredis 5's auto-pipelining can misalign replies when an EVALSHA inside an
 * auto-pipeline meets NOSCRIPT (redis/ioredis#1931, fixed only in 6.x), so these commands stay out
 * of auto-pipelines: for stock decisions a wrong reply is never acceptable.
 */
export const SCRIPT_COMMANDS: readonly string[] = SCRIPTS.map(commandName);

/** Defines every script of lua/ on a client once (`defineCommand`); idempotent. */
export function defineScripts(redis: Redis | Cluster): StockRedis {
  const client = redis as StockRedis;
  for (const name of SCRIPTS) {
    const command = commandName(name);
    if (typeof (client as unknown as Record<string, unknown>)[command] !== 'function') {
      // No numberOfKeys: carts have a variable number of lines, so each call passes its key count.
      client.defineCommand(command, { lua: luaSource(name) });
    }
  }
  return client;
}

/** A SKU without counters. Whether it is unknown (404) or Redis lost its data (503) takes a look at the marker: see StockStore. */
export class CountersMissing extends StockholdError {
  constructor(readonly sku: string) {
    super('UNAVAILABLE', `stock counters of ${sku} are not loaded in Redis`, { sku });
    this.name = 'CountersMissing';
  }
}

/** What a refused script call was about, so its refusal can name the line and the figures. */
export interface RefusalContext {
  script: ScriptName;
  reservationId?: string;
  /** The lines of the call, in the order the script numbered them (1-based `line` in the reply). */
  lines?: readonly CartLine[];
  sku?: string;
  delta?: number;
  /** The customer of a hold ('' or absent for none). */
  customerId?: string;
}

/** The one place a refusal code becomes an error. Outcome codes (>= 0) are not refusals. */
export function scriptRefusal(reply: ScriptReply, ctx: RefusalContext): Error {
  const [code, line, figure] = reply;
  const subject = ctx.lines?.[line - 1];
  const sku = subject?.sku ?? ctx.sku ?? '?';
  switch (code) {
    case ScriptCode.Insufficient:
      return insufficientStock(sku, subject?.quantity ?? 0, figure);
    case ScriptCode.NotLoaded:
      return new CountersMissing(sku);
    case ScriptCode.AlreadyFinished:
      return new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${ctx.reservationId} already finished; it cannot hold again`, {
        reservationId: ctx.reservationId,
      });
    case ScriptCode.ExceedsHold:
      return quantityExceedsHold(sku, subject?.quantity ?? 0, figure);
    case ScriptCode.NotHeld:
      return unavailable(`Redis holds nothing of ${sku} for reservation ${ctx.reservationId}`, { sku });
    case ScriptCode.HeldOtherwise:
      return new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${ctx.reservationId} holds another quantity of ${sku}`, {
        reservationId: ctx.reservationId,
        sku,
      });
    case ScriptCode.CustomerLimit: {
      // hold.lua answers {code, line, limit, held, bought}.
      if (!ctx.customerId) return customerIdRequired(sku);
      return customerLimitExceeded(sku, ctx.customerId, subject?.quantity ?? 0, { limit: reply[2], held: reply[3] ?? 0, bought: reply[4] ?? 0 });
    }
    case ScriptCode.WouldOversell:
      // adjust.lua answers the figures it refused on: {code, total, reserved}.
      return wouldOversell(sku, reply[1], reply[2], ctx.delta ?? 0);
    case ScriptCode.Applied:
    case ScriptCode.Unchanged:
    case ScriptCode.AlreadyApplied:
      return new Error(`${ctx.script}.lua: code ${code} is an outcome, not a refusal`);
    default:
      return new Error(`${ctx.script}.lua answered an unknown code ${String(code)}`);
  }
}

/** Counters a script leaves behind: a SKU's total and reserved units. */
export interface Figures {
  total: number;
  reserved: number;
}

/** A line of a commit: units sold and the id of their `sale` movement ('0' when it sells nothing). */
export interface SaleLine {
  sku: string;
  sold: number;
  movementId: string;
}

const outcome = (reply: ScriptReply, ...codes: ScriptCode[]) => codes.includes(reply[0]);

/**
 * Typed calls of the scripts over one client. `now` and the retention of the `done` guard are the
 * store's: `done` entries older than `retentionMs` are forgotten inside the scripts. Refusals are
 * thrown through `scriptRefusal`; NotLoaded always as CountersMissing (transient: retry once the
 * counters are rebuilt), never skipped.
 */
export class StockScripts {
  constructor(
    readonly redis: StockRedis,
    private readonly retentionMs: number,
    private readonly now: () => number,
  ) {}

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

  /**
   * Holds every line or none, for one workflow `run`. `alreadyHeld` when it held them before (a
   * retry). On a cluster the cart is held slot group by slot group; when a group is refused, the
   * groups taken before it are given back (no tombstone: the id stays usable), so the caller
   * still sees all or nothing.
   */
  async hold(reservationId: string, run: string, lines: readonly CartLine[], customerId = ''): Promise<{ alreadyHeld: boolean; newlyHeld: CartLine[] }> {
    const taken: CartLine[][] = [];
    const newlyHeld: CartLine[] = [];
    for (const group of this.groups(lines)) {
      const skus = group.map((l) => l.sku);
      const reply = await this.redis.stockHold(skus.length * 4, ...lineKeys(skus), reservationId, run, customerId, ...group.map((l) => l.quantity));
      if (outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyApplied)) {
        if (reply[0] === ScriptCode.Applied) newlyHeld.push(...group);
        taken.push(group);
        continue;
      }
      for (const done of taken) await this.release(reservationId, done.map((l) => l.sku), '');
      throw scriptRefusal(reply, { script: 'hold', reservationId, lines: group, customerId });
    }
    return { alreadyHeld: newlyHeld.length === 0, newlyHeld };
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
      const reply = await this.redis.stockRelease(groupSkus.length * 4, ...lineKeys(groupSkus), reservationId, now, now - this.retentionMs, tombstone);
      if (reply[0] === ScriptCode.Applied) units += reply[1];
      else if (reply[0] !== ScriptCode.Unchanged) {
        // release.lua answers the line without counters in the second figure.
        throw scriptRefusal([reply[0], reply[1], 0], { script: 'release', reservationId, lines: groupSkus.map((sku) => ({ sku, quantity: 0 })) });
      }
    }
    return { units };
  }

  /**
   * Applies durable sales to Redis: holds released, totals lowered once, and on limited SKUs the
   * sales added to what `customerId` bought, with them. `alreadyFinished` for a retry.
   */
  async commit(reservationId: string, lines: readonly SaleLine[], customerId = ''): Promise<{ alreadyFinished: boolean }> {
    let finished = true;
    for (const group of this.groups(lines)) {
      const now = this.now();
      const skus = group.map((l) => l.sku);
      const perLine = group.flatMap((l) => [l.sold, l.movementId]);
      const reply = await this.redis.stockCommit(skus.length * 4, ...lineKeys(skus), reservationId, now, now - this.retentionMs, customerId, ...perLine);
      if (!outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyFinished)) {
        throw scriptRefusal(reply, { script: 'commit', reservationId, lines: group.map((l) => ({ sku: l.sku, quantity: l.sold })) });
      }
      finished &&= reply[0] === ScriptCode.AlreadyFinished;
    }
    return { alreadyFinished: finished };
  }

  /**
   * Applies a durable ledger movement to total, once per movement id; a sale's or return's
   * `customerId` (of its reservation) has its bought count moved with it on a limited SKU.
   */
  async move(sku: string, movementId: string, delta: number, customerId = ''): Promise<Figures & { alreadyApplied: boolean }> {
    const reply = await this.redis.stockMove(3, keys.stock(sku), keys.holds(sku), keys.customers(sku), movementId, delta, customerId);
    if (outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyApplied)) {
      return { total: reply[1], reserved: reply[2], alreadyApplied: reply[0] === ScriptCode.AlreadyApplied };
    }
    throw scriptRefusal(reply, { script: 'move', sku });
  }

  /** Lowers total by -`delta` unless that leaves it below reserved; once per movement id. */
  async adjust(sku: string, movementId: string, delta: number): Promise<Figures & { alreadyApplied: boolean }> {
    const reply = await this.redis.stockAdjust(1, keys.stock(sku), movementId, delta);
    if (outcome(reply, ScriptCode.Applied, ScriptCode.AlreadyApplied)) {
      return { total: reply[1], reserved: reply[2], alreadyApplied: reply[0] === ScriptCode.AlreadyApplied };
    }
    throw scriptRefusal(reply, { script: 'adjust', sku, delta });
  }

  /**
   * Sets a SKU's counters and holds from a PostgreSQL snapshot. Mode "missing" loads only a SKU that
   * has no counters (safe beside live traffic); "force" replaces them. `loaded` false: left as it was.
   */
  async load(sku: string, snapshot: SkuFigures, mode: 'missing' | 'force'): Promise<Figures & { loaded: boolean }> {
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
      ...snapshot.holds.flatMap(([id, quantity, customerId]) => [id, quantity, customerId ?? '']),
      ...(snapshot.maxPerCustomer ? (snapshot.bought ?? []).flat() : []),
    );
    if (outcome(reply, ScriptCode.Applied, ScriptCode.Unchanged)) return { total: reply[1], reserved: reply[2], loaded: reply[0] === ScriptCode.Applied };
    throw scriptRefusal(reply, { script: 'load', sku });
  }

  /**
   * Puts back a hold Redis lost (reserved follows through fixReserved): `restored`, `unchanged`
   * (it came back or finished meanwhile), or `short` when others hold the units now.
   */
  async restoreHold(sku: string, reservationId: string, quantity: number, customerId = ''): Promise<'restored' | 'unchanged' | 'short'> {
    const reply = await this.redis.stockRestoreHold(4, keys.stock(sku), keys.holds(sku), keys.done(sku), keys.customers(sku), reservationId, quantity, customerId);
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
  async rebase(sku: string, observed: number, total: number, mark: string): Promise<boolean> {
    const reply = await this.redis.stockRebase(3, keys.stock(sku), keys.holds(sku), keys.customers(sku), observed, total, mark);
    if (outcome(reply, ScriptCode.Applied, ScriptCode.Unchanged)) return reply[0] === ScriptCode.Applied;
    throw scriptRefusal(reply, { script: 'rebase', sku });
  }

  /**
   * Sets a SKU's name and settings as PostgreSQL has them; with a limit, the bought counts are
   * replaced by `bought`, a snapshot up to the ledger position `bmark` taken under the SKU's row lock.
   */
  async settings(sku: string, settings: SkuSettings & { name: string }, bmark: string, bought: readonly (readonly [string, number])[]): Promise<Figures> {
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
  /** The HELD reservations' holds: reservation id, quantity, and its customer when it names one. */
  holds: readonly (readonly [string, number, (string | null)?])[];
  /** With a limit: units each customer bought minus returned, up to `mark`. */
  bought?: readonly (readonly [string, number])[];
}
