/**
 * Benchmark of the hold path, in one process and one run so the figures are comparable:
 *   (a) StockStore.hold: the hold.lua decision in Redis, then the reservation row in PostgreSQL;
 *   (b) raw EVALSHA of lua/hold.lua, sent like the store's script commands (no auto-pipelining);
 *   (b2) raw EVALSHA, auto-pipelined (what ioredis does for EVALSHA by default), for reference;
 *   (c) redis.stockHold: the store's script command alone (the Redis part of (a)).
 * Each mode runs with the same number of concurrent callers, in several alternating rounds
 * (the machine is noisy); the table shows the median over rounds and each mode's median
 * per-round ratio to (b). (a) holds one SKU; (b), (b2) and (c) share a second one, whose holds
 * (Redis only, no PostgreSQL rows) are dropped after each measurement so Redis memory stays
 * bounded. Everything the run holds is released at the end.
 *
 *   npm run bench:holds   (builds, then runs node build/bench/stock-holds.js)
 *
 * Environment: REDIS_URL (redis://127.0.0.1:6379/8), DATABASE_URL
 * (postgres://postgres@127.0.0.1:5432/stockhold_bench), BENCH_CONCURRENCY (64),
 * BENCH_ROUNDS (5), BENCH_ROUND_MS (1500).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createPool, createRedis, keys, lineKeys, luaSource, migrate, SCRIPT_COMMANDS, ScriptCode, StockStore } from '../src/stock';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/8';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/stockhold_bench';
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 64);
const ROUNDS = positiveInt('BENCH_ROUNDS', 5);
const ROUND_MS = positiveInt('BENCH_ROUND_MS', 1_500);
const WARMUP_MS = 300;
const MAX_STOCK = 2 ** 31 - 1;

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

/** Where a URL points, without any credentials it may carry. */
function where(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Mode {
  key: 'a' | 'b' | 'b2' | 'c';
  label: string;
  /** One hold of one unit under a fresh reservation id; true when it was applied. */
  hold(id: string): Promise<boolean>;
}

const applied = (reply: unknown) => Array.isArray(reply) && reply[0] === ScriptCode.Applied;

/** Runs `mode` with CONCURRENCY callers for `ms`; returns holds per second and the counts. */
async function measure(mode: Mode, ms: number, nextId: () => string): Promise<{ rate: number; held: number; failed: number }> {
  let held = 0;
  let failed = 0;
  const start = performance.now();
  const deadline = start + ms;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        if (await mode.hold(nextId())) held += 1;
        else failed += 1;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return { rate: held / seconds, held, failed };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  await migrate(DATABASE_URL);
  const redis = createRedis(REDIS_URL);
  // Same settings as the store's client, with EVALSHA kept out of auto-pipelines like the script commands.
  const plain = createRedis(REDIS_URL, { autoPipeliningIgnoredCommands: [...SCRIPT_COMMANDS, 'evalsha'] });
  const db = createPool(DATABASE_URL);
  const store = new StockStore(redis, db);

  const run = randomUUID().replace(/-/g, '').slice(0, 10);
  const sku = `BENCH-${run}`; // held through the store: (a)
  const rawSku = `BENCH-${run}-raw`; // held through Redis only: (b), (b2), (c)
  const prefix = `bh${run}`;
  const skuKeys = lineKeys([rawSku]);
  let seq = 0;
  const nextId = (mode: string) => () => `${prefix}${mode}_${(seq++).toString(36)}`;
  let storeHeld = 0;
  let rawHeld = 0;
  let mismatches = 0;

  try {
    await store.createSku({ sku, total: MAX_STOCK, name: 'benchmark: holds through the store' });
    await store.createSku({ sku: rawSku, total: MAX_STOCK, name: 'benchmark: raw holds' });
    const sha = String(await redis.script('LOAD', luaSource('hold')));
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();

    const modes: Mode[] = [
      {
        key: 'a',
        label: '(a) StockStore.hold (Redis + PostgreSQL row)',
        hold: (id) =>
          store.hold({ reservationId: id, items: [{ sku, quantity: 1 }], expiresAt }).then(
            () => true,
            () => false,
          ),
      },
      { key: 'b', label: '(b) raw EVALSHA hold.lua', hold: async (id) => applied(await plain.evalsha(sha, 3, ...skuKeys, id, 1)) },
      { key: 'b2', label: '(b2) raw EVALSHA, auto-pipelined', hold: async (id) => applied(await redis.evalsha(sha, 3, ...skuKeys, id, 1)) },
      { key: 'c', label: '(c) redis.stockHold (store script command)', hold: async (id) => applied(await redis.stockHold(3, ...skuKeys, id, 1)) },
    ];

    console.log(
      `stock-holds: ${CONCURRENCY} concurrent callers, ${ROUNDS} rounds x ${ROUND_MS} ms per mode, node ${process.version}\n` +
        `  redis ${where(REDIS_URL)}, postgres ${where(DATABASE_URL)}, sku ${sku}`,
    );

    const rates = new Map<string, number[]>(modes.map((m) => [m.key, []]));
    /** Checks a measurement's holds are all in Redis; drops the Redis-only ones (they have no rows). */
    const count = async (mode: Mode, r: { held: number; failed: number }) => {
      if (r.failed > 0) throw new Error(`${mode.label}: ${r.failed} holds were not applied`);
      if (mode.key === 'a') {
        storeHeld += r.held;
        return;
      }
      rawHeld += r.held;
      const [reserved, holds] = await Promise.all([redis.hget(keys.stock(rawSku), 'reserved'), redis.hlen(keys.holds(rawSku))]);
      if (Number(reserved) !== r.held || holds !== r.held) mismatches += 1;
      // UNLINK frees the big hash in the background instead of blocking Redis.
      await redis.multi().unlink(keys.holds(rawSku)).hset(keys.stock(rawSku), 'reserved', 0).exec();
    };
    for (const mode of modes) await count(mode, await measure(mode, WARMUP_MS, nextId(mode.key)));
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round so no mode always runs first (or right after PostgreSQL's writes).
      const order = modes.map((_, i) => modes[(i + round) % modes.length]!);
      const line: string[] = [];
      for (const mode of order) {
        const r = await measure(mode, ROUND_MS, nextId(mode.key));
        await count(mode, r);
        rates.get(mode.key)!.push(r.rate);
        line.push(`${mode.key} ${Math.round(r.rate)}`);
      }
      console.log(`  round ${round + 1}: ${line.join(', ')} holds/s`);
    }

    const base = rates.get('b')!;
    const rows = [['mode', 'median holds/s', 'min', 'max', 'vs (b)']];
    for (const mode of modes) {
      const values = rates.get(mode.key)!;
      // Paired per-round ratios: the rounds interleave, so each ratio compares like with like.
      const ratio = median(values.map((v, i) => v / base[i]!));
      rows.push([mode.label, String(Math.round(median(values))), String(Math.round(Math.min(...values))), String(Math.round(Math.max(...values))), ratio.toFixed(2)]);
    }
    console.log(`\n${table(rows)}\n`);

    // Every hold of the run is accounted for: Redis reserved, its holds hash, PostgreSQL's HELD rows.
    const [reserved, holdCount, pgHeld] = await Promise.all([
      redis.hget(keys.stock(sku), 'reserved'),
      redis.hlen(keys.holds(sku)),
      db.query<{ n: string }>(`SELECT count(*) AS n FROM reservations WHERE starts_with(id, $1) AND status = 'HELD'`, [prefix]),
    ]);
    const consistent = mismatches === 0 && Number(reserved) === storeHeld && holdCount === storeHeld && Number(pgHeld.rows[0]!.n) === storeHeld;
    console.log(
      `check: ${storeHeld} holds through the store (Redis reserved ${reserved}, holds ${holdCount}, PostgreSQL HELD ${pgHeld.rows[0]!.n}); ` +
        `${rawHeld} Redis-only holds, ${mismatches} measurements miscounted: ${consistent ? 'consistent' : 'INCONSISTENT'}`,
    );
    if (!consistent) process.exitCode = 1;
  } finally {
    // Release everything this run held: its reservations become CANCELLED, and the SKU's counters
    // are reloaded from PostgreSQL with no holds (the SKU and its ledger stay: the ledger is append-only).
    await db
      .query(
        `UPDATE reservations SET status = 'CANCELLED', reason = 'benchmark cleanup', updated_at = now()
          WHERE starts_with(id, $1) AND status = 'HELD'`,
        [prefix],
      )
      .catch((err: unknown) => console.error('cleanup (PostgreSQL) failed:', err));
    const rows = await db
      .query<{ sku: string; total: string; name: string }>('SELECT sku, total, name FROM skus WHERE sku = ANY($1::text[])', [[sku, rawSku]])
      .catch(() => undefined);
    for (const row of rows?.rows ?? []) {
      await redis
        .unlink(keys.holds(row.sku))
        .then(() => redis.stockLoad(2, keys.stock(row.sku), keys.holds(row.sku), 'force', row.total, row.name))
        .catch((err: unknown) => console.error('cleanup (Redis) failed:', err));
    }
    await Promise.allSettled([redis.quit(), plain.quit(), db.end()]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
