/**
 * A PostgreSQL database and a redis-server of a test file's own, for tests whose figures must be
 * theirs alone (deployment-wide counts, the reconciler's repairs). The database starts empty, so
 * empty Redis counters are complete: they are marked loaded, as global-setup does for the shared ones.
 */
import { createRedis, keys } from '../../src/stock';
import { startRedisServer } from './redis-server';
import { createTestDatabase } from './test-database';

export interface PrivateStores {
  databaseUrl: string;
  redisUrl: string;
  /** Stops the redis-server and drops the database; safe to call twice. */
  stop(): Promise<void>;
}

export async function startPrivateStores(prefix: string): Promise<PrivateStores> {
  const database = await createTestDatabase(prefix);
  const redisServer = await startRedisServer().catch(async (err: unknown) => {
    await database.drop();
    throw err;
  });
  const stop = async () => {
    await Promise.allSettled([redisServer.stop(), database.drop()]);
  };
  const redis = createRedis(redisServer.url);
  try {
    await redis.set(keys.loaded, `${prefix} test setup`);
  } catch (err) {
    await stop();
    throw err;
  } finally {
    await redis.quit().catch(() => undefined);
  }
  return { databaseUrl: database.url, redisUrl: redisServer.url, stop };
}
