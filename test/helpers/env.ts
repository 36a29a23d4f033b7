import { randomUUID } from 'node:crypto';

/**
 * The run's own stores, set up by ./global-setup.ts (a database `stockhold_test_<random>`, a
 * private redis-server, a second one for the tests that wipe Redis) and handed over in
 * process.env; set these variables before running jest to use stores of your own instead.
 */
function fromSetup(
  name: 'TEST_DATABASE_URL' | 'TEST_REDIS_URL' | 'TEST_LOSSY_REDIS_URL' | 'TEST_REDIS_CLUSTER_NODES',
): string {
  const value = process.env[name];
  if (!value)
    throw new Error(
      `${name} is not set: run the tests through jest (its globalSetup, test/helpers/global-setup.ts, sets it) or set it yourself`,
    );
  return value;
}

export const TEST_DATABASE_URL = fromSetup('TEST_DATABASE_URL');
export const TEST_REDIS_URL = fromSetup('TEST_REDIS_URL');
/** A Redis of its own for the tests that wipe Redis, so they never disturb the others. */
export const TEST_LOSSY_REDIS_URL = fromSetup('TEST_LOSSY_REDIS_URL');
/** The run's Redis Cluster (three masters), as REDIS_CLUSTER_NODES takes it. */
export const TEST_REDIS_CLUSTER_NODES = fromSetup('TEST_REDIS_CLUSTER_NODES');

/** Which Redis this test file runs on: the single one, or the cluster (see ./cluster-mode.ts). */
export const REDIS_MODE: 'single' | 'cluster' = process.env.STOCKHOLD_TEST_REDIS === 'cluster' ? 'cluster' : 'single';

/** Where the test file's stock module finds Redis: a URL, or the cluster's seed nodes. */
export const TEST_REDIS_TARGET: string | { host: string; port: number }[] =
  REDIS_MODE === 'cluster'
    ? TEST_REDIS_CLUSTER_NODES.split(',').map((seed) => ({
        host: seed.split(':')[0]!,
        port: Number(seed.split(':')[1]),
      }))
    : TEST_REDIS_URL;

/** A SKU name of its own for each test, so tests never share counters. */
export function uniqueSku(prefix = 'T'): string {
  return `${prefix}-${randomUUID().slice(0, 13)}`;
}

export function uniqueId(prefix = 'r'): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
}
