import { Cluster, Redis } from 'ioredis';
import { keys, migrate } from '../../src/stock';
import { startRedisCluster, type RedisCluster } from './redis-cluster';
import { startRedisServer, type RedisServer } from './redis-server';
import { createTestDatabase, type TestDatabase } from './test-database';

/**
 * Stores of the run's own, so a run never touches anyone else's data (another checkout's run, a
 * running service): a fresh PostgreSQL database `stockhold_test_<random>`, a private redis-server
 * for the tests and a second one for the tests that wipe Redis. Their URLs reach the tests through
 * process.env (TEST_DATABASE_URL, TEST_REDIS_URL, TEST_LOSSY_REDIS_URL; read by ./env.ts), which
 * jest copies into every test file's environment. global-teardown.ts removes them; guards remove
 * them too when the run dies before its teardown (./guard.ts).
 *
 * Each of the three variables, when already set, is used as given: such a store is neither
 * created nor wiped nor removed (a database given so is migrated).
 */
export const URL_VARIABLES = [
  'TEST_DATABASE_URL',
  'TEST_REDIS_URL',
  'TEST_LOSSY_REDIS_URL',
  'TEST_REDIS_CLUSTER_NODES',
] as const;

export interface TestStores {
  /** Removes what the setup created and restores the variables it set. */
  cleanUp(): Promise<void>;
}

declare global {
  // Shared with global-teardown.ts: jest runs both in its own process, outside the test sandboxes.
  var __stockholdTestStores: TestStores | undefined;
}

export default async function globalSetup(): Promise<void> {
  const given = Object.fromEntries(URL_VARIABLES.map((name) => [name, process.env[name]]));
  const created: { database?: TestDatabase; redis: RedisServer[]; cluster?: RedisCluster } = { redis: [] };
  const cleanUp = async () => {
    const results = await Promise.allSettled([
      created.database?.drop(),
      ...created.redis.map((r) => r.stop()),
      created.cluster?.stop(),
    ]);
    for (const name of URL_VARIABLES) {
      if (given[name] === undefined) delete process.env[name];
      else process.env[name] = given[name];
    }
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  globalThis.__stockholdTestStores = { cleanUp };
  try {
    const redisNode = async (): Promise<string> => {
      const node = await startRedisServer();
      created.redis.push(node);
      return node.url;
    };
    // All at once; allSettled, so that on a failure everything started is known to cleanUp.
    const settled = await Promise.allSettled([
      given.TEST_DATABASE_URL
        ? migrate(given.TEST_DATABASE_URL).then(() => given.TEST_DATABASE_URL!)
        : createTestDatabase().then((db) => {
            created.database = db;
            return db.url;
          }),
      given.TEST_REDIS_URL ?? redisNode(),
      given.TEST_LOSSY_REDIS_URL ?? redisNode(),
      given.TEST_REDIS_CLUSTER_NODES ??
        startRedisCluster().then((cluster) => {
          created.cluster = cluster;
          return cluster.seeds;
        }),
    ]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [databaseUrl, redisUrl, lossyRedisUrl, clusterNodes] = settled.map(
      (r) => (r as PromiseFulfilledResult<string>).value,
    ) as [string, string, string, string];
    // The database is empty, so empty counters are complete: mark them loaded (as a rebuild would).
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      await redis.set(keys.loaded, 'test setup');
    } finally {
      redis.disconnect();
    }
    process.env.TEST_DATABASE_URL = databaseUrl;
    process.env.TEST_REDIS_URL = redisUrl;
    process.env.TEST_LOSSY_REDIS_URL = lossyRedisUrl;
    // The cluster's marker too (it lives in the slot of its key, on one of the masters).
    const cluster = new Cluster(
      clusterNodes.split(',').map((seed) => ({ host: seed.split(':')[0]!, port: Number(seed.split(':')[1]) })),
      { lazyConnect: true },
    );
    try {
      await cluster.set(keys.loaded, 'test setup');
    } finally {
      cluster.disconnect();
    }
    process.env.TEST_REDIS_CLUSTER_NODES = clusterNodes;
  } catch (err) {
    // jest runs no globalTeardown when the setup fails: remove what was created here.
    globalThis.__stockholdTestStores = undefined;
    await cleanUp().catch(() => undefined);
    throw err;
  }
}
