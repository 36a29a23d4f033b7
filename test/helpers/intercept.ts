/**
 * Clients that let a test step in before a call reaches a store, to fail it, delay it or hand its
 * turn to a scheduler: the stock module is given them in place of the real ones (StockStore takes
 * its Redis and its pool), and everything it does goes through unchanged otherwise.
 */
import type { Pool } from 'pg';
import { SCRIPT_COMMANDS, type StockRedis } from '../../src/stock';

/** Redis, with `before(command, args)` awaited before each Lua script command (stockHold, stockRelease...); a throw fails the command unsent. */
export function interceptScripts(
  redis: StockRedis,
  before: (command: string, args: unknown[]) => void | Promise<void>,
): StockRedis {
  return new Proxy(redis, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (typeof prop === 'string' && SCRIPT_COMMANDS.includes(prop)) {
        return async (...args: unknown[]) => {
          await before(prop, args);
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/**
 * A pool with `before('connect' | 'query')` awaited before it lends a connection (a transaction
 * starts) or runs a statement of its own. Statements inside a transaction are not intercepted:
 * it holds row locks by then.
 */
export function interceptPool(pool: Pool, before: (call: 'connect' | 'query') => Promise<void>): Pool {
  return new Proxy(pool, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop === 'connect' || prop === 'query') {
        return async (...args: unknown[]) => {
          await before(prop);
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}
