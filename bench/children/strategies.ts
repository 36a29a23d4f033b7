/**
 * Load generator child for the strategies scenario: `concurrency` buyers take one unit at a time
 * from one hot SKU with one strategy, in one of two phases:
 *   - "timed": plenty of stock, as many sales as possible for `durationS` (throughput); a sale
 *     the counter does not show (a lost update) is a unit sold twice;
 *   - "sellout": `initial` units, buyers keep buying until they are refused; every unit sold past
 *     `initial` is oversold.
 * Strategies: naive read-then-write SQL, conditional UPDATE, SELECT … FOR UPDATE, Redis Lua hold.
 * The SQL ones use a table of their own (bench_hot_stock) in the benchmark's database; the Lua
 * one runs the service's lua/hold.lua on keys of its own in the benchmark's Redis database.
 */
import { performance } from 'node:perf_hooks';
import { createPool, createRedis, keys, lineKeys, ScriptCode } from '../../src/stock';
import { serveJob } from './protocol';

export type Strategy = 'naive' | 'conditional' | 'forUpdate' | 'lua';

export interface StrategyJob {
  strategy: Strategy;
  phase: 'timed' | 'sellout';
  databaseUrl: string;
  redisUrl: string;
  sku: string;
  initial: number;
  concurrency: number;
  durationS: number;
}

export interface StrategyResult {
  strategy: Strategy;
  phase: 'timed' | 'sellout';
  sold: number;
  seconds: number;
  opsPerSec: number;
  /** What the counter shows was taken: initial - final. */
  counted: number;
  /** Units sold beyond what the stock allowed (sold - counted, or sold - initial in a sell-out). */
  oversold: number;
  errors: number;
}

serveJob<StrategyJob, StrategyResult>(async (job, progress) => {
  const db = createPool(job.databaseUrl, { max: job.concurrency });
  const redis = createRedis(job.redisUrl);
  const { sku } = job;
  let sold = 0;
  let errors = 0;
  let seq = 0;
  const idPrefix = `st${process.pid}`;

  // ------------------------------------------------------------------ set the stock
  if (job.strategy === 'lua') {
    await redis.unlink(keys.holds(sku), keys.done(sku));
    await redis.hset(keys.stock(sku), { total: job.initial, reserved: 0, name: 'strategies benchmark' });
  } else {
    await db.query('CREATE TABLE IF NOT EXISTS bench_hot_stock (sku text PRIMARY KEY, available integer NOT NULL)');
    await db.query(
      'INSERT INTO bench_hot_stock (sku, available) VALUES ($1, $2) ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available',
      [sku, job.initial],
    );
  }
  const skuKeys = lineKeys([sku]);

  /** One attempt to buy one unit: true when sold, false when refused (sold out). */
  const buy: Record<Strategy, () => Promise<boolean>> = {
    naive: async () => {
      const { rows } = await db.query<{ available: number }>('SELECT available FROM bench_hot_stock WHERE sku = $1', [
        sku,
      ]);
      const available = rows[0]!.available;
      if (available < 1) return false;
      await db.query('UPDATE bench_hot_stock SET available = $2 WHERE sku = $1', [sku, available - 1]);
      return true;
    },
    conditional: async () => {
      const r = await db.query(
        'UPDATE bench_hot_stock SET available = available - 1 WHERE sku = $1 AND available >= 1',
        [sku],
      );
      return r.rowCount === 1;
    },
    forUpdate: async () => {
      const c = await db.connect();
      try {
        await c.query('BEGIN');
        const { rows } = await c.query<{ available: number }>(
          'SELECT available FROM bench_hot_stock WHERE sku = $1 FOR UPDATE',
          [sku],
        );
        const ok = rows[0]!.available >= 1;
        if (ok) await c.query('UPDATE bench_hot_stock SET available = available - 1 WHERE sku = $1', [sku]);
        await c.query('COMMIT');
        return ok;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    },
    lua: async () => {
      const [code] = await redis.stockHold(4, ...skuKeys, `${idPrefix}_${(seq++).toString(36)}`, '', '', 1);
      if (code === ScriptCode.Applied) return true;
      if (code === ScriptCode.Insufficient) return false;
      throw new Error(`hold.lua answered ${code}`);
    },
  };
  const attempt = buy[job.strategy];

  // ------------------------------------------------------------------ run
  const t0 = performance.now();
  const until = t0 + job.durationS * 1000;
  const timer = setInterval(
    () => progress(`${Math.round((performance.now() - t0) / 1000)} s: ${sold.toLocaleString('en-US')} sold`),
    2_000,
  );
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (performance.now() < until) {
        try {
          if (await attempt()) sold += 1;
          else if (job.phase === 'sellout') return;
        } catch {
          errors += 1;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);

  // ------------------------------------------------------------------ what the counter shows
  let counted: number;
  if (job.strategy === 'lua') {
    counted = Number(await redis.hget(keys.stock(sku), 'reserved'));
    await redis.unlink(keys.holds(sku), keys.done(sku), keys.stock(sku));
  } else {
    const { rows } = await db.query<{ available: number }>('SELECT available FROM bench_hot_stock WHERE sku = $1', [
      sku,
    ]);
    counted = job.initial - rows[0]!.available;
    await db.query('DELETE FROM bench_hot_stock WHERE sku = $1', [sku]);
  }
  await Promise.allSettled([redis.quit(), db.end()]);
  const oversold = job.phase === 'sellout' ? sold - job.initial : sold - counted;
  return {
    strategy: job.strategy,
    phase: job.phase,
    sold,
    seconds,
    opsPerSec: sold / seconds,
    counted,
    oversold: Math.max(0, oversold),
    errors,
  };
});
