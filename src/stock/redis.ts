import { Redis, type RedisOptions } from 'ioredis';
import { defineScripts, SCRIPT_COMMANDS, type StockRedis } from './scripts';

/**
 * A Redis client for the hot path, with the scripts defined: auto-pipelining batches concurrent
 * reads into one round trip; a command fails after one reconnect attempt or 1.5 s without an
 * answer, so callers answer 503 quickly instead of hanging while Redis is down or frozen.
 */
export function createRedis(url: string, options: RedisOptions = {}): StockRedis {
  const redis = new Redis(url, {
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: [...SCRIPT_COMMANDS],
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    // A frozen Redis (connection open, nothing answers) fails a command after 1.5 s, so a read
    // still answers 503 within the contract's 2 s instead of hanging.
    commandTimeout: 1_500,
    // A client closed after its connection was refused must not wait 2 s for a close that already happened.
    disconnectTimeout: 200,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    ...options,
  });
  // Connection errors surface on the commands that fail; an unhandled 'error' event would crash.
  redis.on('error', () => undefined);
  return defineScripts(redis);
}
