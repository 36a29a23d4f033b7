import { Redis, type RedisOptions } from 'ioredis';
import type { Pool } from 'pg';
import { createPool } from './database';
import { defineScripts, SCRIPT_COMMANDS, type StockRedis } from './redis-scripts';
import { StockStore, type StockStoreOptions } from './store';

export * from './errors';
export * from './redis-scripts';
export * from './schemas';
export * from './store';
export { createPool, ensureDatabase, migrate } from './database';

/**
 * A Redis client for the hot path: auto-pipelining batches concurrent commands into one
 * round trip; a command fails after one reconnect attempt so callers answer 503 quickly
 * instead of hanging while Redis is down.
 */
export function createRedis(url: string, options: RedisOptions = {}): StockRedis {
  const redis = new Redis(url, {
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: [...SCRIPT_COMMANDS],
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    ...options,
  });
  // Connection errors surface on the commands that fail; an unhandled 'error' event would crash.
  redis.on('error', () => undefined);
  return defineScripts(redis);
}

export interface StockClients {
  redis: StockRedis;
  db: Pool;
  stock: StockStore;
  close(): Promise<void>;
}

/** Creates the Redis and PostgreSQL clients and the store over them. */
export function createStock(config: { redisUrl: string; databaseUrl: string }, options: StockStoreOptions = {}): StockClients {
  const redis = createRedis(config.redisUrl);
  const db = createPool(config.databaseUrl);
  const stock = new StockStore(redis, db, options);
  return {
    redis,
    db,
    stock,
    async close() {
      await Promise.allSettled([redis.quit(), db.end()]);
    },
  };
}
