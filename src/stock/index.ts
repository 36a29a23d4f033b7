/**
 * The stock module: PostgreSQL ledger (ledger.ts), Redis Lua scripts (scripts.ts), idempotency
 * keys (idempotency.ts), and StockStore (store.ts), the façade the API and the activities call.
 */
import type { Pool } from 'pg';
import { createPool } from './database';
import { createRedis } from './redis/client';
import type { StockRedis } from './redis/scripts';
import { StockStore, type StockStoreOptions } from './store';

export { DriftCounts } from './drift';
export { Figures, type DeploymentFigures, type StockFigures } from './figures';
export { createPool, ensureDatabase, migrate, transaction } from './database';
export { keys, lineKeys } from './redis/keys';
export { createRedis, type RedisTarget } from './redis/client';
export * from './redis/scripts';
export * from './redis/counters';
export * from './store';

export interface StockClients {
  redis: StockRedis;
  db: Pool;
  stock: StockStore;
  close(): Promise<void>;
}

/** Creates the Redis and PostgreSQL clients and the store over them. */
export function createStock(
  config: { redisUrl: string; redisClusterNodes?: { host: string; port: number }[]; databaseUrl: string },
  options: StockStoreOptions = {},
): StockClients {
  const redis = createRedis(config.redisClusterNodes ?? config.redisUrl);
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
