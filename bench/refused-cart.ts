/**
 * How long a refused cart keeps units from other buyers on a Redis Cluster.
 *
 * On a cluster a cart whose SKUs live in different slots is held slot group by slot group
 * (src/stock/redis/scripts.ts, StockScripts.hold); when a later group is refused, the groups taken
 * before it are given back. Between the two, other buyers see those units held and may be
 * refused: an undersell window, never an oversell. This measures that window for a cart of
 * three SKUs in three slots whose last SKU is sold out, so the first two are held and given
 * back every time:
 *
 *   window (upper bound) = from sending the first group's hold to the reply of its release;
 *   window (lower bound) = from the first group's hold reply to sending its release;
 *   reference            = one hold script call on the same cluster (one round trip).
 *
 * With 1 caller (an idle cluster) and with BENCH_CONCURRENCY callers (64) refusing at once, in
 * alternating rounds; each figure also as a multiple of the reference measured in the same round.
 * Afterwards it checks that nothing stays held (reserved = 0 on every SKU).
 *
 *   npm run bench:refused-cart
 *
 * Starts its own 3-master Redis Cluster from the system redis-server (test/helpers) and uses the
 * PostgreSQL database of DATABASE_URL (postgres://postgres@127.0.0.1:5432/stockhold_bench_carts,
 * created if missing) only to create the SKUs. BENCH_ROUNDS (5), BENCH_ROUND_MS (1500).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import calculateSlot from 'cluster-key-slot';
import { createPool, createRedis, keys, migrate, StockStore, type StockRedis } from '../src/stock';
import { startRedisCluster } from '../test/helpers/redis-cluster';
import { positiveInt } from './harness/env';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/stockhold_bench_carts';
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 64);
const ROUNDS = positiveInt('BENCH_ROUNDS', 5);
const ROUND_MS = positiveInt('BENCH_ROUND_MS', 1_500);

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const median = (values: number[]) => quantile(values, 0.5);

/** SKUs with distinct slots: `count` of them, so that a cart of them is `count` slot groups. */
function skusInDistinctSlots(prefix: string, count: number): string[] {
  const skus: string[] = [];
  const slots = new Set<number>();
  for (let i = 0; skus.length < count; i++) {
    const sku = `${prefix}-${i}`;
    const slot = calculateSlot(keys.stock(sku));
    if (!slots.has(slot)) {
      slots.add(slot);
      skus.push(sku);
    }
  }
  return skus;
}

/** The times the first group's hold and release were sent and answered, per reservation id. */
interface Trace {
  holdSent?: number;
  holdAnswered?: number;
  releaseSent?: number;
  releaseAnswered?: number;
}

/** The store's Redis client, with the first hold and the first release of each id timed. */
function traced(redis: StockRedis, traces: Map<string, Trace>): StockRedis {
  const wrap = (name: 'stockHold' | 'stockRelease', sent: keyof Trace, answered: keyof Trace) => {
    const original = redis[name].bind(redis) as (...args: (string | number)[]) => Promise<unknown>;
    (redis as unknown as Record<string, unknown>)[name] = async (...args: (string | number)[]) => {
      const id = String(args[Number(args[0]) + 1]); // after numkeys and the KEYS: the reservation id
      const trace = traces.get(id);
      const first = trace !== undefined && trace[sent] === undefined;
      if (first) trace[sent] = performance.now();
      const reply = await original(...args);
      if (first) trace[answered] = performance.now();
      return reply;
    };
  };
  wrap('stockHold', 'holdSent', 'holdAnswered');
  wrap('stockRelease', 'releaseSent', 'releaseAnswered');
  return redis;
}

interface Round {
  upper: number[];
  lower: number[];
  reference: number[];
}

async function main(): Promise<void> {
  const cluster = await startRedisCluster(3);
  await migrate(DATABASE_URL);
  const db = createPool(DATABASE_URL);
  const traces = new Map<string, Trace>();
  const redis = traced(
    createRedis(cluster.seeds.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) }))),
    traces,
  );
  const store = new StockStore(redis, db);
  const run = randomUUID().slice(0, 8);
  const [a, b, soldOut] = skusInDistinctSlots(`CART-${run}`, 3) as [string, string, string];
  const single = `CART-${run}-single`;
  let seq = 0;
  try {
    for (const sku of [a, b]) await store.createSku({ sku, total: 1_000_000, name: 'refused-cart benchmark' });
    await store.createSku({ sku: soldOut, total: 0, name: 'refused-cart benchmark: sold out' });
    await store.createSku({ sku: single, total: 0, name: 'refused-cart benchmark: reference' });
    const cart = [a, b, soldOut].map((sku) => ({ sku, quantity: 1 }));
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();

    /** One refused cart: its window. */
    const refusedCart = async (into: Round) => {
      const id = `rc${run}-${(seq++).toString(36)}`;
      const trace: Trace = {};
      traces.set(id, trace);
      const refused = await store.hold({ reservationId: id, items: cart, expiresAt }).then(
        () => false,
        (err: { code?: string }) => err.code === 'INSUFFICIENT_STOCK',
      );
      traces.delete(id);
      if (!refused) throw new Error(`cart ${id} was not refused with INSUFFICIENT_STOCK`);
      if (
        trace.holdSent === undefined ||
        trace.holdAnswered === undefined ||
        trace.releaseSent === undefined ||
        trace.releaseAnswered === undefined
      ) {
        throw new Error(`cart ${id}: the first group was not held and given back (${JSON.stringify(trace)})`);
      }
      into.upper.push(trace.releaseAnswered - trace.holdSent);
      into.lower.push(trace.releaseSent - trace.holdAnswered);
    };
    /** The reference: one hold script call (refused: nothing to give back), one round trip. */
    const oneScript = async (into: Round) => {
      const start = performance.now();
      await store
        .hold({ reservationId: `rs${run}-${(seq++).toString(36)}`, items: [{ sku: single, quantity: 1 }], expiresAt })
        .catch(() => undefined);
      into.reference.push(performance.now() - start);
    };
    const measure = async (callers: number, ms: number): Promise<Round> => {
      const round: Round = { upper: [], lower: [], reference: [] };
      for (const kind of [refusedCart, oneScript]) {
        const deadline = performance.now() + ms;
        await Promise.all(
          Array.from({ length: callers }, async () => {
            while (performance.now() < deadline) await kind(round);
          }),
        );
      }
      return round;
    };

    console.log(
      `refused-cart: a cart of 3 SKUs in 3 slots, the last sold out; ${ROUNDS} rounds x ${ROUND_MS} ms per load; node ${process.version}`,
    );
    await measure(4, 300); // warm-up: connections to every node, scripts loaded
    const rows = [
      [
        'callers',
        'carts',
        'window p50 ms',
        'p99',
        'max',
        'lower p50',
        'one script p50',
        'window / one script (p50, p99)',
      ],
    ];
    const report: Record<string, unknown> = {};
    for (const callers of [1, CONCURRENCY]) {
      const all: Round = { upper: [], lower: [], reference: [] };
      const ratios50: number[] = [];
      const ratios99: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const round = await measure(callers, ROUND_MS);
        all.upper.push(...round.upper);
        all.lower.push(...round.lower);
        all.reference.push(...round.reference);
        ratios50.push(median(round.upper) / median(round.reference));
        ratios99.push(quantile(round.upper, 0.99) / quantile(round.reference, 0.99));
      }
      const fixed = (n: number) => n.toFixed(2);
      rows.push([
        String(callers),
        String(all.upper.length),
        fixed(median(all.upper)),
        fixed(quantile(all.upper, 0.99)),
        fixed(Math.max(...all.upper)),
        fixed(median(all.lower)),
        fixed(median(all.reference)),
        `${fixed(median(ratios50))}x, ${fixed(median(ratios99))}x`,
      ]);
      report[`callers${callers}`] = {
        carts: all.upper.length,
        windowP50Ms: median(all.upper),
        windowP99Ms: quantile(all.upper, 0.99),
        windowMaxMs: Math.max(...all.upper),
        lowerBoundP50Ms: median(all.lower),
        oneScriptP50Ms: median(all.reference),
        oneScriptP99Ms: quantile(all.reference, 0.99),
        ratioP50: median(ratios50),
        ratioP99: median(ratios99),
      };
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
    console.log(
      `\n${rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n')}\n`,
    );

    // Nothing stays held: every refused cart gave back what it took.
    const reserved = await Promise.all(
      [a, b, soldOut, single].map(async (sku) => Number((await redis.hget(keys.stock(sku), 'reserved')) ?? 0)),
    );
    const clean = reserved.every((n) => n === 0);
    console.log(
      `check: reserved after the run ${reserved.join(', ')}: ${clean ? 'every unit given back' : 'UNITS LEFT HELD'}`,
    );
    console.log(JSON.stringify({ scenario: 'refusedCart', ...report }));
    if (!clean) process.exitCode = 1;
  } finally {
    await Promise.allSettled([redis.quit(), db.end()]);
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
