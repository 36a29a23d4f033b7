/**
 * The Redis Lua scripts of lua/: their reply codes (one enum, as BullMQ's error-code.ts), loading
 * (includes inlined, defineCommand, then EVALSHA), and `scriptRefusal`, the one function that
 * turns a reply code into an error. Calling them (keys, arguments, decoded replies) is
 * counters.ts's job; nothing else in the service talks to Redis.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import {
  customerIdRequired,
  customerLimitExceeded,
  insufficientStock,
  quantityExceedsHold,
  StockholdError,
  unavailable,
  wouldOversell,
} from '../../domain/errors';
import type { CartLine } from '../../domain/types';
import { LUA_DIR } from '../../paths';

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

const SCRIPTS = [
  'hold',
  'precheck',
  'release',
  'commit',
  'move',
  'adjust',
  'load',
  'restore-hold',
  'fix-reserved',
  'rebase',
  'settings',
  'fix-customers',
  'release-fence',
  'transfer',
] as const;
export type ScriptName = (typeof SCRIPTS)[number];

/**
 * A script's source with its includes inlined: a line `--- @include "includes/x"` (as BullMQ's
 * scripts have) is replaced by lua/includes/x.lua, itself with its includes inlined, so scripts
 * share code yet each is one script. Each file is inlined once (a second include of it is
 * dropped: its functions are defined already); an include cycle is an error naming the chain.
 */
export function luaSource(name: string, dir = LUA_DIR): string {
  const inlined = new Set<string>();
  const expand = (file: string, chain: readonly string[]): string => {
    inlined.add(file);
    return readFileSync(path.join(dir, `${file}.lua`), 'utf8').replace(
      /^--- @include "([\w/-]+)"$/gm,
      (_, include: string) => {
        const within = [...chain, file];
        if (within.includes(include)) throw new Error(`Lua include cycle: ${[...within, include].join(' -> ')}`);
        return inlined.has(include) ? '' : expand(include, within);
      },
    );
  };
  return expand(name, []);
}

/** The client commands `defineScripts` adds (EVALSHA, falling back to EVAL once): `stock` + the script's name in camel case. */
export interface ScriptCommands {
  stockHold(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockPrecheck(numKeys: number, ...args: (string | number)[]): Promise<(number | null)[]>;
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
  stockReleaseFence(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockTransfer(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
}

/** A client of one Redis or of a Redis Cluster, with the scripts defined. */
export type StockRedis = (Redis | Cluster) & ScriptCommands;

const commandName = (name: ScriptName) =>
  `stock${name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase())}`;

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
  items?: readonly CartLine[];
  sku?: string;
  delta?: number;
  /** The customer of a hold ('' or absent for none). */
  customerId?: string;
}

/** The one place a refusal code becomes an error. Outcome codes (>= 0) are not refusals. */
export function scriptRefusal(reply: ScriptReply, ctx: RefusalContext): Error {
  const [code, line, figure] = reply;
  const subject = ctx.items?.[line - 1];
  const sku = subject?.sku ?? ctx.sku ?? '?';
  switch (code) {
    case ScriptCode.Insufficient: {
      const refusal = insufficientStock(sku, subject?.quantity ?? 0, figure);
      if (subject?.locationId) refusal.details.locationId = subject.locationId;
      return refusal;
    }
    case ScriptCode.NotLoaded:
      return new CountersMissing(sku);
    case ScriptCode.AlreadyFinished:
      return new StockholdError(
        'RESERVATION_ID_CONFLICT',
        `reservation ${ctx.reservationId} already finished; it cannot hold again`,
        {
          reservationId: ctx.reservationId,
        },
      );
    case ScriptCode.ExceedsHold:
      return quantityExceedsHold(sku, subject?.quantity ?? 0, figure);
    case ScriptCode.NotHeld:
      return unavailable(`Redis holds nothing of ${sku} for reservation ${ctx.reservationId}`, { sku });
    case ScriptCode.HeldOtherwise:
      return new StockholdError(
        'RESERVATION_ID_CONFLICT',
        `reservation ${ctx.reservationId} holds another quantity of ${sku}`,
        {
          reservationId: ctx.reservationId,
          sku,
        },
      );
    case ScriptCode.CustomerLimit: {
      // hold.lua answers {code, line, limit, held, bought}.
      if (!ctx.customerId) return customerIdRequired(sku);
      return customerLimitExceeded(sku, ctx.customerId, subject?.quantity ?? 0, {
        limit: reply[2],
        held: reply[3] ?? 0,
        bought: reply[4] ?? 0,
      });
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
