/**
 * A PostgreSQL database of the test run's own (`stockhold_test_<random>`), created and migrated
 * here, dropped WITH (FORCE) by `drop()` or, when the test process dies first, by a guard
 * (./guard.ts). Two checkouts (or two runs) on one machine each get theirs; neither touches the other's.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Client } from 'pg';
import { migrate } from '../../src/stock';
import { dropWhenOrphaned } from './guard';

/** The server the test databases are created on: $TEST_POSTGRES_URL, else the local one (trust auth). */
const SERVER_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database (closing any connection left to it); safe to call twice. */
  drop(): Promise<void>;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function admin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates and migrates a new database `<prefix>_<random>`. */
export async function createTestDatabase(prefix = 'stockhold_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  // CREATE, not "IF NOT EXISTS": a name taken by anyone else fails here rather than being shared (and later dropped).
  await admin(async (client) => {
    await client.query(`CREATE DATABASE ${quote(name)}`);
    await client.query(
      `COMMENT ON DATABASE ${quote(name)} IS ${client.escapeLiteral(`stockhold test run: pid ${process.pid} on ${os.hostname()}, ${new Date().toISOString()}`)}`,
    );
  });
  const guard = dropWhenOrphaned(SERVER_URL, name);
  let dropping: Promise<void> | undefined;
  const drop = () => {
    dropping ??= admin((client) => client.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`)).then(() =>
      guard.cancel(),
    );
    return dropping;
  };
  try {
    await migrate(url.toString());
  } catch (err) {
    await drop().catch(() => undefined);
    throw err;
  }
  return { url: url.toString(), name, drop };
}
