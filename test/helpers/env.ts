import { randomUUID } from 'node:crypto';

/** Tests use their own database and Redis logical database, so they never touch a running service's data. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/stockhold_test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/9';
/** A Redis database of its own for the tests that wipe Redis, so they never disturb the others. */
export const TEST_LOSSY_REDIS_URL = process.env.TEST_LOSSY_REDIS_URL ?? 'redis://127.0.0.1:6379/10';

/** A SKU name of its own for each test, so tests never share counters. */
export function uniqueSku(prefix = 'T'): string {
  return `${prefix}-${randomUUID().slice(0, 13)}`;
}

export function uniqueId(prefix = 'r'): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
}
