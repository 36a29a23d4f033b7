/**
 * PostgreSQL plumbing: the pool (with the contract's timeouts), transactions, creating the database
 * when missing, and the migrations (node-pg-migrate over migrations/).
 */
import { Client, Pool, type PoolClient, type PoolConfig } from 'pg';
import { runner } from 'node-pg-migrate';
import { MIGRATIONS_DIR } from '../paths';

export { MIGRATIONS_DIR };

/** Creates the database named in `databaseUrl` when it does not exist yet (a local, fresh machine). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error(`DATABASE_URL names no database: ${url.origin}`);
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      // CREATE DATABASE takes no parameters; the name is quoted as an identifier.
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created meanwhile by another process
      });
    }
  } finally {
    await client.end();
  }
}

/** Applies every pending migration of migrations/ (node-pg-migrate); safe to run at each start. */
export async function migrate(databaseUrl: string, log: (msg: string) => void = () => undefined): Promise<void> {
  await ensureDatabase(databaseUrl);
  await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    count: Infinity,
    // node-pg-migrate takes an advisory lock, so several processes starting at once are safe.
    noLock: false,
    log,
    logger: { debug: () => undefined, info: log, warn: log, error: log },
  });
}

/**
 * A pool whose waits are bounded: a connection in 2 s, a statement in 10 s (enforced by the server,
 * and by the client too, for a server that is frozen rather than down), so no caller hangs.
 */
export function createPool(databaseUrl: string, config: PoolConfig = {}): Pool {
  const pool = new Pool({
    connectionString: databaseUrl,
    max: 10,
    connectionTimeoutMillis: 2_000,
    statement_timeout: 10_000,
    query_timeout: 10_000,
    ...config,
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/** Runs `work` in one transaction on one connection: COMMIT when it returns, ROLLBACK when it throws. */
export async function transaction<T>(db: Pool, work: (c: PoolClient) => Promise<T>): Promise<T> {
  const c = await db.connect();
  // The pool stops listening to a client it has lent out: a connection that drops mid-transaction
  // (PostgreSQL crashed) would emit an unhandled 'error' and kill the process. Fail the work instead.
  let lost: unknown;
  const onError = (err: unknown) => (lost = err);
  c.on('error', onError);
  try {
    await c.query('BEGIN');
    const result = await work(c);
    await c.query('COMMIT');
    return result;
  } catch (err) {
    lost ??= await c.query('ROLLBACK').then(
      () => undefined,
      (rollbackFailed: unknown) => rollbackFailed,
    );
    throw err;
  } finally {
    c.off('error', onError);
    // A broken connection is destroyed, not handed to the next caller.
    c.release(lost instanceof Error ? lost : lost === undefined ? undefined : new Error(String(lost)));
  }
}
