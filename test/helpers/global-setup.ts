import { Client } from 'pg';
import { Redis } from 'ioredis';
import { migrate } from '../../src/stock/database';
import { keys } from '../../src/stock/redis-scripts';
import { TEST_DATABASE_URL, TEST_LOSSY_REDIS_URL, TEST_REDIS_URL } from './env';

/** Every run starts from an empty, freshly migrated test database and empty test Redis databases. */
export default async function globalSetup(): Promise<void> {
  const admin = new URL(TEST_DATABASE_URL);
  const name = admin.pathname.slice(1);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await client.end();
  await migrate(TEST_DATABASE_URL);
  for (const url of [TEST_REDIS_URL, TEST_LOSSY_REDIS_URL]) {
    const redis = new Redis(url);
    await redis.flushdb();
    // The database is empty, so empty counters are complete: mark them loaded (as a rebuild would).
    if (url === TEST_REDIS_URL) await redis.set(keys.loaded, 'test setup');
    await redis.quit();
  }
}
