/**
 * The Redis client of the stock module (one server or a Cluster), with the scripts defined and
 * the timeouts that turn a frozen Redis into a 503 instead of a hang.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { defineScripts, SCRIPT_COMMANDS, type StockRedis } from './scripts';

/** Where Redis is: one server (a URL), or a Redis Cluster (seed nodes; the cluster tells the rest). */
export type RedisTarget = string | { host: string; port: number }[];

/**
 * A Redis client for the hot path, with the scripts defined: auto-pipelining batches concurrent
 * reads into one round trip (per node on a cluster); a command fails after one reconnect attempt
 * or 1.5 s without an answer, so callers answer 503 quickly instead of hanging while Redis is down
 * or frozen.
 */
export function createRedis(target: RedisTarget, options: RedisOptions = {}): StockRedis {
  const nodeOptions: RedisOptions = {
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    // A frozen Redis (connection open, nothing answers) fails a command after 1.5 s, so a read
    // still answers 503 within the contract's 2 s instead of hanging.
    commandTimeout: 1_500,
    // A client closed after its connection was refused must not wait 2 s for a close that already happened.
    disconnectTimeout: 200,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    ...options,
  };
  const redis =
    typeof target === 'string'
      ? new Redis(target, {
          enableAutoPipelining: true,
          autoPipeliningIgnoredCommands: [...SCRIPT_COMMANDS],
          ...nodeOptions,
        })
      : new Cluster(target, {
          enableAutoPipelining: true,
          autoPipeliningIgnoredCommands: [...SCRIPT_COMMANDS],
          redisOptions: nodeOptions,
          clusterRetryStrategy: (times) => Math.min(times * 100, 2_000),
          // Fail fast while the cluster is unreachable or resharding, like a single node does.
          maxRedirections: 16,
          retryDelayOnFailover: 100,
          retryDelayOnClusterDown: 100,
          slotsRefreshTimeout: 2_000,
        });
  // Connection errors surface on the commands that fail; an unhandled 'error' event would crash.
  redis.on('error', () => undefined);
  return defineScripts(redis);
}
