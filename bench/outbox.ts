/**
 * What writing events through the transactional outbox costs (docs/DESIGN.md "Events (outbox)"),
 * measured in one process and one run so the figures compare: the same operations through a
 * StockStore that writes events and one that does not (`outbox: false`), in alternating rounds.
 *   restock: POST /v1/skus/:sku/restock's store call (ledger row + total, its events, then Redis),
 *            every caller on one SKU: the hot-SKU case, where the row lock serialises the writers;
 *   hold:    StockStore.hold of 1 unit (hold.lua, then the HELD row; with events also the SKU's
 *            row lock, skus.reserved and reservation.held), every caller on one SKU.
 * It also times reading a SKU's `reserved` from the skus column against summing it from HELD
 * reservations (what the threshold events would otherwise compute under the lock).
 *
 *   npm run bench:outbox
 *
 * Environment: REDIS_URL (default: a private redis-server started for the run), DATABASE_URL
 * (postgres://postgres@127.0.0.1:5432/stockhold_bench_outbox, created, and dropped at the end when
 * it is the default), BENCH_CONCURRENCY (32), BENCH_ROUNDS (5), BENCH_ROUND_MS (1500).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import { createPool, createRedis, migrate, StockStore } from '../src/stock';
import { startRedisServer } from '../test/helpers/redis-server';
import { closedLoop } from './harness/closed-loop';
import { positiveInt } from './harness/env';
import { dropDatabase } from './harness/stack';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/stockhold_bench_outbox';
const DATABASE_URL = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 32);
const ROUNDS = positiveInt('BENCH_ROUNDS', 5);
const ROUND_MS = positiveInt('BENCH_ROUND_MS', 1_500);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `op` with CONCURRENCY callers for `ms`; operations per second. */
async function measure(op: () => Promise<unknown>, ms: number): Promise<number> {
  let done = 0;
  const seconds = await closedLoop(CONCURRENCY, ms, async () => {
    await op();
    done += 1;
  });
  return done / seconds;
}

async function main(): Promise<void> {
  const node = process.env.REDIS_URL ? undefined : await startRedisServer();
  const redisUrl = process.env.REDIS_URL ?? node!.url;
  await migrate(DATABASE_URL);
  const redis = createRedis(redisUrl);
  const db = createPool(DATABASE_URL, { max: CONCURRENCY });
  const stores = { events: new StockStore(redis, db), none: new StockStore(redis, db, { outbox: false }) };
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
  try {
    const run = randomUUID().slice(0, 8);
    const sku = (name: string) => `BENCH-OUTBOX-${run}-${name}`;
    for (const name of ['restock-events', 'restock-none', 'hold-events', 'hold-none']) {
      await stores.events.createSku({ sku: sku(name), total: name.startsWith('hold') ? 1_000_000_000 : 0 });
    }
    const ops = {
      'restock, events': () => stores.events.restock(sku('restock-events'), { quantity: 1 }),
      'restock, no events': () => stores.none.restock(sku('restock-none'), { quantity: 1 }),
      'hold, events': () =>
        stores.events.hold({
          reservationId: randomUUID(),
          items: [{ sku: sku('hold-events'), quantity: 1 }],
          expiresAt,
        }),
      'hold, no events': () =>
        stores.none.hold({ reservationId: randomUUID(), items: [{ sku: sku('hold-none'), quantity: 1 }], expiresAt }),
    };
    const rates = new Map<string, number[]>(Object.keys(ops).map((k) => [k, []]));
    for (const op of Object.values(ops)) await measure(op, 300); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      const order = Object.entries(ops);
      if (round % 2 === 1) order.reverse();
      for (const [name, op] of order) rates.get(name)!.push(await measure(op, ROUND_MS));
    }
    const m = (name: string) => median(rates.get(name)!);
    console.log(
      `outbox bench: ${CONCURRENCY} callers, ${ROUNDS} rounds of ${ROUND_MS} ms, median ops/s (each with and without events, same run)`,
    );
    for (const [op, withEvents, without] of [
      ['restock', 'restock, events', 'restock, no events'],
      ['hold', 'hold, events', 'hold, no events'],
    ] as const) {
      const events = (await stores.events.events({ sku: sku(`${op}-events`), limit: 1 })).length;
      if (events === 0) throw new Error(`no events were written for ${op}`);
      console.log(
        `  ${op.padEnd(8)} with events ${m(withEvents).toFixed(0).padStart(6)}/s   without ${m(without).toFixed(0).padStart(6)}/s   ratio ${(m(withEvents) / m(without)).toFixed(2)}`,
      );
    }
    const written = await db.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE skus && $1::text[]', [
      [sku('restock-events'), sku('hold-events')],
    ]);
    console.log(`  events written by the measured runs: ${written.rows[0]!.n}`);

    // reserved: the column against the sum over the SKU's HELD reservations (both indexed).
    const held = await db.query<{ n: string }>('SELECT count(*) AS n FROM reservation_lines WHERE sku = $1', [
      sku('hold-events'),
    ]);
    const time = async (sql: string) => {
      const start = performance.now();
      for (let i = 0; i < 200; i++) await db.query(sql, [sku('hold-events')]);
      return (performance.now() - start) / 200;
    };
    const column = await time('SELECT reserved FROM skus WHERE sku = $1');
    const summed = await time(
      `SELECT COALESCE(sum(l.quantity), 0) FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id WHERE l.sku = $1 AND r.status = 'HELD'`,
    );
    console.log(
      `  reserved of a SKU with ${held.rows[0]!.n} reservation lines: column ${column.toFixed(3)} ms, summed ${summed.toFixed(3)} ms per read`,
    );

    await statusCountCost(db, stores.events, sku, expiresAt);
  } finally {
    await Promise.allSettled([redis.quit(), db.end()]);
    await node?.stop();
    if (DATABASE_URL === DEFAULT_DATABASE_URL) await dropDatabase(DATABASE_URL);
  }
}

/**
 * What counting reservations by status costs a hold (migrations/1765100000000_metrics.sql), with
 * the callers spread over SKUs of their own, where a counter would be the one row they all share:
 * the trigger as migrated (64 rows by backend pid), the same counting into one row, and no
 * counting at all, in alternating rounds.
 */
async function statusCountCost(
  db: Pool,
  store: StockStore,
  sku: (name: string) => string,
  expiresAt: string,
): Promise<void> {
  const skus = Array.from({ length: CONCURRENCY }, (_, i) => sku(`spread-${i}`));
  for (const s of skus) await store.createSku({ sku: s, total: 1_000_000_000 });
  let next = 0;
  const hold = () =>
    store.hold({ reservationId: randomUUID(), items: [{ sku: skus[next++ % skus.length]!, quantity: 1 }], expiresAt });
  const counting = (
    shard: string,
  ) => `CREATE OR REPLACE FUNCTION count_reservation_status() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN RETURN NULL; END IF;
      INSERT INTO reservation_status_counts (status, shard, count) VALUES (NEW.status, ${shard}, 1)
      ON CONFLICT (status, shard) DO UPDATE SET count = reservation_status_counts.count + 1;
      RETURN NULL;
    END $$`;
  const variants: Record<string, string[]> = {
    '64 rows (as migrated)': [
      'ALTER TABLE reservations ENABLE TRIGGER count_reservation_status',
      counting('pg_backend_pid() % 64'),
    ],
    'one row': ['ALTER TABLE reservations ENABLE TRIGGER count_reservation_status', counting('0')],
    'not counted': ['ALTER TABLE reservations DISABLE TRIGGER count_reservation_status'],
  };
  const rates = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
  await measure(hold, 300);
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.entries(variants);
    if (round % 2 === 1) order.reverse();
    for (const [name, statements] of order) {
      for (const sql of statements) await db.query(sql);
      rates.get(name)!.push(await measure(hold, ROUND_MS));
    }
  }
  for (const sql of variants['64 rows (as migrated)']!) await db.query(sql);
  const base = median(rates.get('not counted')!);
  console.log(`  hold over ${skus.length} SKUs, reservations counted by status (median ops/s, ratio to not counted):`);
  for (const name of Object.keys(variants)) {
    const rate = median(rates.get(name)!);
    console.log(`    ${name.padEnd(22)} ${rate.toFixed(0).padStart(6)}/s   ratio ${(rate / base).toFixed(2)}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
