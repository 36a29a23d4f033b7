/**
 * Benchmark of the hold path, in one process and one run so the figures are comparable:
 *   (a) StockStore.hold: the hold.lua decision in Redis, then the reservation row in PostgreSQL;
 *   (b) raw EVALSHA of lua/hold.lua, sent like the store's script commands (no auto-pipelining);
 *   (b2) raw EVALSHA, auto-pipelined (what ioredis does for EVALSHA by default), for reference;
 *   (c) redis.stockHold: the store's script command alone (the Redis part of (a));
 *   (d) StockStore.hold on a Redis Cluster: (a) with the service's cluster client (REDIS_CLUSTER_NODES);
 *   (e) redis.stockHold on the Redis Cluster: (c) with the cluster client;
 *   (u) the conditional-UPDATE strategy the seed rejects (`UPDATE … SET available = available - 1
 *       WHERE sku = $1 AND available >= 1` on one hot row of a table of its own), through the
 *       store's own pool: what one hot PostgreSQL row allows when its lock is held for one
 *       statement. (a)'s PostgreSQL step holds the hot SKU's row lock for one function call
 *       (migration 1765300000000), so "(a) vs (u)" is what the rest of the hold costs.
 * With BENCH_BASELINE_REV (a git revision), one more mode:
 *   (a0) StockStore.hold of that revision, built beside this one (bench/harness/revision.ts), on a
 *        SKU of its own in the same Redis and PostgreSQL server, in a database of its own that its
 *        own migrations made (DATABASE_URL's name + `_baseline`: its SQL functions are its own): (a) before a change, in the same rounds, so the
 *        table's "vs (a0)" is the change's cost or gain.
 * Each mode runs with the same number of concurrent callers, in several alternating rounds
 * (the machine is noisy); the table shows the median over rounds and each mode's median
 * per-round ratio to (b), and the cluster modes' to their single-Redis twin ((d) to (a), (e) to
 * (c)). (a) and (d) each hold one SKU; (b), (b2) and (c) share a second one and (e) has its own,
 * whose holds (Redis only, no PostgreSQL rows) are dropped after each measurement so Redis memory
 * stays bounded. Everything the run holds is released at the end.
 *
 * By default both Redis shapes are private, started for the run from the system redis-server on
 * spare ports the way the tests start theirs (test/helpers/redis-server.ts, redis-cluster.ts): one
 * node, and a 3-master cluster. Neither shares a core's time with anybody else's Redis traffic.
 *
 *   npm run bench:holds   (builds, then runs node build/bench/stock-holds.js)
 *
 * Environment: REDIS_URL (a Redis to use instead of the private node), REDIS_CLUSTER_NODES
 * (host:port,… of a cluster to use instead of the private one), DATABASE_URL
 * (postgres://postgres@127.0.0.1:5432/stockhold_bench_holds, created when missing), BENCH_CONCURRENCY (64),
 * BENCH_ROUNDS (5), BENCH_ROUND_MS (1500), BENCH_BASELINE_REV (none), BENCH_HOLDS_JSON (a file to write the figures to, for
 * `npm run bench -- holds`).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  createPool,
  createRedis,
  keys,
  lineKeys,
  luaSource,
  migrate,
  SCRIPT_COMMANDS,
  ScriptCode,
  StockStore,
  type StockRedis,
} from '../src/stock';
import { startRedisCluster } from '../test/helpers/redis-cluster';
import { startRedisServer } from '../test/helpers/redis-server';
import { closedLoop } from './harness/closed-loop';
import { buildRevision } from './harness/revision';
import { positiveInt } from './harness/env';

// A database of its own: no reconciler of a running benchmark stack must see these HELD rows
// (with no workflow behind them, it would release them as orphans after its grace period).
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/stockhold_bench_holds';
/** (a0)'s database: beside DATABASE_URL's, with `_baseline` added to its name. */
const BASELINE_DATABASE_URL = (() => {
  const url = new URL(DATABASE_URL);
  url.pathname = `${url.pathname}_baseline`;
  return url.toString();
})();

/** A pool on (a0)'s database, created and migrated by the baseline revision itself. */
async function baselineDatabase(module: typeof import('../src/stock')): Promise<ReturnType<typeof createPool>> {
  await module.migrate(BASELINE_DATABASE_URL);
  return module.createPool(BASELINE_DATABASE_URL);
}
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 64);
const ROUNDS = positiveInt('BENCH_ROUNDS', 5);
const ROUND_MS = positiveInt('BENCH_ROUND_MS', 1_500);
const WARMUP_MS = 300;
const MAX_STOCK = 2 ** 31 - 1;

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

type ModeKey = 'a' | 'a0' | 'b' | 'b2' | 'c' | 'd' | 'e' | 'u';

interface Mode {
  key: ModeKey;
  label: string;
  /** One hold of one unit under a fresh reservation id; true when it was applied. */
  hold(id: string): Promise<boolean>;
}

const applied = (reply: unknown) => Array.isArray(reply) && reply[0] === ScriptCode.Applied;

/** Runs `mode` with CONCURRENCY callers for `ms`; returns holds per second and the counts. */
async function measure(
  mode: Mode,
  ms: number,
  nextId: () => string,
): Promise<{ rate: number; held: number; failed: number }> {
  let held = 0;
  let failed = 0;
  const seconds = await closedLoop(CONCURRENCY, ms, async () => {
    if (await mode.hold(nextId())) held += 1;
    else failed += 1;
  });
  return { rate: held / seconds, held, failed };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '))
    .join('\n');
}

/** Where the run's Redis shapes are: REDIS_URL / REDIS_CLUSTER_NODES, or private servers it started (and stops). */
async function redisShapes(): Promise<{
  url: string;
  cluster: { host: string; port: number }[];
  describe: string;
  stop(): Promise<void>;
}> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    await Promise.allSettled(stops.map((s) => s()));
  };
  try {
    let url = process.env.REDIS_URL;
    let single = url ? where(url) : '';
    if (!url) {
      const node = await startRedisServer();
      stops.push(() => node.stop());
      url = node.url;
      single = `a private redis-server on ${node.port}`;
    }
    let seeds = process.env.REDIS_CLUSTER_NODES?.trim();
    let clustered = seeds ?? '';
    if (!seeds) {
      const c = await startRedisCluster(3);
      stops.push(() => c.stop());
      seeds = c.seeds;
      clustered = `a private 3-master Redis Cluster on ${c.nodes.map((n) => n.port).join(', ')}`;
    }
    const cluster = seeds.split(',').map((entry) => {
      const [host, port] = entry.trim().split(':');
      return { host: host!, port: Number(port) };
    });
    return { url, cluster, describe: `single Redis: ${single}; cluster: ${clustered}`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Figures of one run, as BENCH_HOLDS_JSON gets them. */
export interface HoldsFigures {
  concurrency: number;
  rounds: number;
  roundMs: number;
  modes: {
    key: ModeKey;
    label: string;
    median: number;
    min: number;
    max: number;
    vsB: number;
    vsSingle?: number;
    vsBaseline?: number;
    /** (a) and (a0): the median per-round ratio to the conditional UPDATE (u). */
    vsUpdate?: number;
  }[];
  /** The revision (a0) measured, when BENCH_BASELINE_REV was given. */
  baseline?: string;
  consistent: boolean;
}

async function main(): Promise<void> {
  await migrate(DATABASE_URL);
  const shapes = await redisShapes();
  const redis = createRedis(shapes.url);
  // Same settings as the store's client, with EVALSHA kept out of auto-pipelines like the script commands.
  const plain = createRedis(shapes.url, { autoPipeliningIgnoredCommands: [...SCRIPT_COMMANDS, 'evalsha'] });
  const clusterRedis = createRedis(shapes.cluster);
  const db = createPool(DATABASE_URL);
  const store = new StockStore(redis, db);
  const clusterStore = new StockStore(clusterRedis, db);
  // (a0): the baseline revision's own stock module, with its own Redis client (its script commands).
  const baselineRev = process.env.BENCH_BASELINE_REV;
  const baseline = baselineRev ? buildRevision(baselineRev) : undefined;
  const baseModule = baseline
    ? // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require(path.join(baseline.lib, 'stock')) as typeof import('../src/stock'))
    : undefined;
  const baseRedis = baseModule?.createRedis(shapes.url);
  // Its own database, migrated by its own migrations: its PostgreSQL functions are its own too.
  const baseDb = baseModule ? await baselineDatabase(baseModule) : undefined;
  const baseStore = baseModule && baseRedis && baseDb ? new baseModule.StockStore(baseRedis, baseDb) : undefined;

  const run = randomUUID().replace(/-/g, '').slice(0, 10);
  const sku = `BENCH-${run}`; // held through the store: (a)
  const rawSku = `BENCH-${run}-raw`; // held through Redis only: (b), (b2), (c)
  const clusterSku = `BENCH-${run}-cluster`; // held through the store on the cluster: (d)
  const clusterRawSku = `BENCH-${run}-cluster-raw`; // held through the cluster client only: (e)
  const baseSku = `BENCH-${run}-baseline`; // held through the baseline revision's store: (a0)
  const updateSku = `BENCH-${run}-update`; // the hot row of the conditional UPDATE: (u)
  const prefix = `bh${run}`;
  const skuKeys = lineKeys([rawSku]);
  const clusterSkuKeys = lineKeys([clusterRawSku]);
  let seq = 0;
  const nextId = (mode: string) => () => `${prefix}${mode}_${(seq++).toString(36)}`;
  const storeHeld: Partial<Record<ModeKey, number>> = {};
  let rawHeld = 0;
  let mismatches = 0;
  let consistent = false;

  try {
    await store.createSku({ sku, total: MAX_STOCK, name: 'benchmark: holds through the store' });
    await store.createSku({ sku: rawSku, total: MAX_STOCK, name: 'benchmark: raw holds' });
    await clusterStore.createSku({
      sku: clusterSku,
      total: MAX_STOCK,
      name: 'benchmark: holds through the store on a cluster',
    });
    await clusterStore.createSku({ sku: clusterRawSku, total: MAX_STOCK, name: 'benchmark: raw holds on a cluster' });
    if (baseStore)
      await baseStore.createSku({
        sku: baseSku,
        total: MAX_STOCK,
        name: `benchmark: holds through the store of ${baseline!.commit}`,
      });
    await db.query('CREATE TABLE IF NOT EXISTS bench_hot_stock (sku text PRIMARY KEY, available integer NOT NULL)');
    await db.query('INSERT INTO bench_hot_stock (sku, available) VALUES ($1, $2)', [updateSku, MAX_STOCK]);
    const sha = String(await redis.script('LOAD', luaSource('hold')));
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const storeHold = (s: Pick<StockStore, 'hold'>, line: string) => (id: string) =>
      s.hold({ reservationId: id, items: [{ sku: line, quantity: 1 }], expiresAt }).then(
        () => true,
        () => false,
      );

    // hold.lua's ARGV after id, run and customer (contract v3): the channel `default` (its one
    // location here) with its strategy, then the one line's quantity and pinned location.
    const HOLD_ARGS = ['default', 'priority', 1, ''] as const;
    const modes: Mode[] = [
      { key: 'a', label: '(a) StockStore.hold (Redis + PostgreSQL row)', hold: storeHold(store, sku) },
      {
        key: 'b',
        label: '(b) raw EVALSHA hold.lua',
        hold: async (id) => applied(await plain.evalsha(sha, 4, ...skuKeys, id, '', '', ...HOLD_ARGS)),
      },
      {
        key: 'b2',
        label: '(b2) raw EVALSHA, auto-pipelined',
        hold: async (id) => applied(await redis.evalsha(sha, 4, ...skuKeys, id, '', '', ...HOLD_ARGS)),
      },
      {
        key: 'c',
        label: '(c) redis.stockHold (store script command)',
        hold: async (id) => applied(await redis.stockHold(4, ...skuKeys, id, '', '', ...HOLD_ARGS)),
      },
      { key: 'd', label: '(d) StockStore.hold on Redis Cluster', hold: storeHold(clusterStore, clusterSku) },
      {
        key: 'u',
        label: '(u) conditional UPDATE of one hot row',
        hold: async () =>
          (
            await db.query('UPDATE bench_hot_stock SET available = available - 1 WHERE sku = $1 AND available >= 1', [
              updateSku,
            ])
          ).rowCount === 1,
      },
      {
        key: 'e',
        label: '(e) redis.stockHold on Redis Cluster',
        hold: async (id) => applied(await clusterRedis.stockHold(4, ...clusterSkuKeys, id, '', '', ...HOLD_ARGS)),
      },
      ...(baseStore
        ? [
            {
              key: 'a0' as const,
              label: `(a0) StockStore.hold at ${baseline!.commit} (before)`,
              hold: storeHold(baseStore, baseSku),
            },
          ]
        : []),
    ];
    const twin: Partial<Record<ModeKey, ModeKey>> = { d: 'a', e: 'c' };

    console.log(
      `stock-holds: ${CONCURRENCY} concurrent callers, ${ROUNDS} rounds x ${ROUND_MS} ms per mode, node ${process.version}\n` +
        `  ${shapes.describe}\n  postgres ${where(DATABASE_URL)}, skus ${sku}, ${clusterSku}`,
    );

    const rates = new Map<string, number[]>(modes.map((m) => [m.key, []]));
    /** Checks a measurement's holds are all in Redis; drops the Redis-only ones (they have no rows). */
    const count = async (mode: Mode, r: { held: number; failed: number }) => {
      if (r.failed > 0) throw new Error(`${mode.label}: ${r.failed} holds were not applied`);
      if (mode.key === 'u') return;
      if (mode.key === 'a' || mode.key === 'a0' || mode.key === 'd') {
        storeHeld[mode.key] = (storeHeld[mode.key] ?? 0) + r.held;
        return;
      }
      rawHeld += r.held;
      const [client, line] = mode.key === 'e' ? [clusterRedis, clusterRawSku] : [redis, rawSku];
      const [reserved, holds] = await Promise.all([
        client.hget(keys.stock(line), 'reserved'),
        client.hlen(keys.holds(line)),
      ]);
      if (Number(reserved) !== r.held || holds !== r.held) mismatches += 1;
      await dropHolds(client, line);
    };
    // Every measurement starts from vacuumed hot rows, as autovacuum keeps them in production. It
    // may be off where the benchmark runs (it is off on this project's machines: `SHOW autovacuum`),
    // and then each mode's measurement would find the dead versions of the rows the modes before
    // it updated: the hot SKU's row and the status counters' shards (one per hold), the (u) row.
    const vacuumHotRows = async () => {
      for (const pool of baseDb ? [db, baseDb] : [db])
        for (const table of ['skus', 'reservation_status_counts', 'bench_hot_stock'])
          await pool.query(`VACUUM ${table}`).catch(() => undefined); // (a0)'s database has no bench_hot_stock
    };
    for (const mode of modes) {
      await vacuumHotRows();
      await count(mode, await measure(mode, WARMUP_MS, nextId(mode.key)));
    }
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round so no mode always runs first (or right after PostgreSQL's writes).
      const order = modes.map((_, i) => modes[(i + round) % modes.length]!);
      const line: string[] = [];
      for (const mode of order) {
        await vacuumHotRows();
        const r = await measure(mode, ROUND_MS, nextId(mode.key));
        await count(mode, r);
        rates.get(mode.key)!.push(r.rate);
        line.push(`${mode.key} ${Math.round(r.rate)}`);
      }
      console.log(`  round ${round + 1}: ${line.join(', ')} holds/s`);
    }

    // Paired per-round ratios: the rounds interleave, so each ratio compares like with like.
    const pairedRatio = (of: ModeKey, to: ModeKey) => {
      const base = rates.get(to)!;
      return median(rates.get(of)!.map((v, i) => v / base[i]!));
    };
    const figures: HoldsFigures['modes'] = modes.map((mode) => {
      const values = rates.get(mode.key)!;
      const t = twin[mode.key];
      return {
        key: mode.key,
        label: mode.label,
        median: Math.round(median(values)),
        min: Math.round(Math.min(...values)),
        max: Math.round(Math.max(...values)),
        vsB: pairedRatio(mode.key, 'b'),
        vsSingle: t ? pairedRatio(mode.key, t) : undefined,
        vsBaseline: baseStore && mode.key === 'a' ? pairedRatio('a', 'a0') : undefined,
        vsUpdate: mode.key === 'a' || mode.key === 'a0' ? pairedRatio(mode.key, 'u') : undefined,
      };
    });
    const rows = [
      [
        'mode',
        'median holds/s',
        'min',
        'max',
        'vs (b)',
        'vs single Redis',
        'vs (u)',
        ...(baseStore ? ['vs (a0)'] : []),
      ],
    ];
    for (const f of figures) {
      rows.push([
        f.label,
        String(f.median),
        String(f.min),
        String(f.max),
        f.vsB.toFixed(2),
        f.vsSingle === undefined ? '' : `${f.vsSingle.toFixed(2)} (${twin[f.key]})`,
        f.vsUpdate === undefined ? '' : f.vsUpdate.toFixed(2),
        ...(baseStore ? [f.vsBaseline === undefined ? '' : f.vsBaseline.toFixed(2)] : []),
      ]);
    }
    console.log(`\n${table(rows)}\n`);

    // Every hold of the run is accounted for: Redis reserved, its holds hash, PostgreSQL's HELD rows.
    const checks = await Promise.all(
      (
        [
          ['a', redis, sku],
          ['d', clusterRedis, clusterSku],
          ...(baseRedis ? [['a0', baseRedis, baseSku] as const] : []),
        ] as const
      ).map(async ([key, client, line]) => {
        const [reserved, holdCount, pgHeld] = await Promise.all([
          client.hget(keys.stock(line), 'reserved'),
          client.hlen(keys.holds(line)),
          (key === 'a0' ? baseDb! : db).query<{ n: string }>(
            `SELECT count(*) AS n FROM reservations r WHERE starts_with(r.id, $1) AND r.status = 'HELD'`,
            [`${prefix}${key}_`],
          ),
        ]);
        const held = storeHeld[key] ?? 0;
        const ok = Number(reserved) === held && holdCount === held && Number(pgHeld.rows[0]!.n) === held;
        return {
          ok,
          text: `(${key}) ${held} holds through the store (Redis reserved ${reserved}, holds ${holdCount}, PostgreSQL HELD ${pgHeld.rows[0]!.n})`,
        };
      }),
    );
    consistent = mismatches === 0 && checks.every((c) => c.ok);
    console.log(
      `check: ${checks.map((c) => c.text).join('; ')}; ${rawHeld} Redis-only holds, ${mismatches} measurements miscounted: ${consistent ? 'consistent' : 'INCONSISTENT'}`,
    );
    if (!consistent) process.exitCode = 1;
    const out = process.env.BENCH_HOLDS_JSON;
    if (out) {
      const written: HoldsFigures = {
        concurrency: CONCURRENCY,
        rounds: ROUNDS,
        roundMs: ROUND_MS,
        modes: figures,
        consistent,
        ...(baseline ? { baseline: baseline.commit } : {}),
      };
      writeFileSync(out, `${JSON.stringify(written)}\n`);
    }
  } finally {
    // Release everything this run held: its reservations become CANCELLED, and the SKUs' holds
    // are dropped from Redis (nothing else holds these SKUs; the SKUs and their ledger stay: the
    // ledger is append-only).
    for (const pool of baseDb ? [db, baseDb] : [db]) {
      await pool
        .query(
          `UPDATE reservations SET status = 'CANCELLED', reason = 'benchmark cleanup', updated_at = now()
            WHERE starts_with(id, $1) AND status = 'HELD'`,
          [prefix],
        )
        .catch((err: unknown) => console.error('cleanup (PostgreSQL) failed:', err));
    }
    await db
      .query('DELETE FROM bench_hot_stock WHERE sku = $1', [updateSku])
      .catch((err: unknown) => console.error('cleanup (PostgreSQL) failed:', err));
    for (const [client, line] of [
      [redis, sku],
      [redis, rawSku],
      [clusterRedis, clusterSku],
      [clusterRedis, clusterRawSku],
      ...(baseRedis ? [[baseRedis, baseSku] as const] : []),
    ] as const) {
      await dropHolds(client, line).catch((err: unknown) => console.error('cleanup (Redis) failed:', err));
    }
    await Promise.allSettled([
      redis.quit(),
      plain.quit(),
      clusterRedis.quit(),
      db.end(),
      ...(baseDb ? [baseDb.end()] : []),
      ...(baseRedis ? [baseRedis.quit()] : []),
    ]);
    await shapes.stop();
  }
}

/** Drops a benchmark SKU's holds from Redis (UNLINK frees the big hash in the background instead of blocking Redis). */
async function dropHolds(client: StockRedis, line: string): Promise<void> {
  // Both keys share the SKU's hash tag, so this transaction is one slot on a cluster too.
  await client.multi().unlink(keys.holds(line)).hset(keys.stock(line), 'reserved', 0).exec();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
