import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { LUA_DIR } from '../paths';

/** Key layout (DESIGN.md): every key of one SKU shares the `{SKU}` hash tag (one Cluster slot). */
export const keys = {
  stock: (sku: string) => `item:{${sku}}:stock`,
  holds: (sku: string) => `item:{${sku}}:holds`,
  done: (sku: string) => `item:{${sku}}:done`,
  /** Present while Redis holds counters loaded from PostgreSQL; gone after a data loss. */
  loaded: 'stockhold:loaded',
};

/** The three keys of each line, in line order: what hold/release/commit take as KEYS. */
export function lineKeys(skus: readonly string[]): string[] {
  return skus.flatMap((sku) => [keys.stock(sku), keys.holds(sku), keys.done(sku)]);
}

/** Result codes of the Lua scripts (see each file's header), in one place. */
export enum ScriptCode {
  Applied = 1,
  Already = 2,
  Nothing = 0,
  Insufficient = -1,
  NotLoaded = -2,
  AlreadyFinished = -3,
  ExceedsHold = -4,
  NotHeld = -5,
  WouldOversell = -6,
}

export type ScriptReply = [ScriptCode, number, number];

const SCRIPTS = ['hold', 'release', 'commit', 'restock', 'adjust', 'load'] as const;
export type ScriptName = (typeof SCRIPTS)[number];

export { LUA_DIR };

/** Reads a script's source; exported for benchmarks that compare raw EVALSHA. */
export function luaSource(name: ScriptName): string {
  return readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8');
}

/** The commands `defineScripts` adds to a client (EVALSHA, falling back to EVAL once). */
export interface StockScripts {
  stockHold(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockRelease(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockCommit(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockRestock(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockAdjust(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  stockLoad(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
}

export type StockRedis = Redis & StockScripts;

const commandName = (name: ScriptName) => `stock${name[0]!.toUpperCase()}${name.slice(1)}`;

/**
 * The client commands of the scripts. ioredis 5's auto-pipelining can misalign replies when an
 * EVALSHA inside an auto-pipeline meets NOSCRIPT (redis/ioredis#1931, fixed only in 6.x), so
 * these commands stay out of auto-pipelines: for stock decisions a wrong reply is never acceptable.
 */
export const SCRIPT_COMMANDS: readonly string[] = SCRIPTS.map(commandName);

/** Loads every script of lua/ once per client with `defineCommand`; idempotent. */
export function defineScripts(redis: Redis): StockRedis {
  const client = redis as StockRedis;
  for (const name of SCRIPTS) {
    const command = commandName(name);
    if (typeof (client as unknown as Record<string, unknown>)[command] !== 'function') {
      // No numberOfKeys: carts have a variable number of lines, so callers pass the key count.
      client.defineCommand(command, { lua: luaSource(name) });
    }
  }
  return client;
}
