/**
 * Benchmark of stock per location (issue 18's speed goals), in one process and one run so the
 * figures are ratios of the same moment:
 *   (h1) a hold of 1 unit on a SKU stocked at one location (`default`, the channel `default`);
 *   (h10) the same on a SKU stocked at 10 locations, through a `most-available` channel over the
 *        10: the hold script reads every level and allocates in its one atomic step.
 *   Both as the Redis script alone (Counters.hold: where the two differ) and as the whole
 *   StockStore.hold (the script, then the reservation row and its allocation in PostgreSQL).
 *   Goal: (h10) / (h1) >= 0.8.
 *   (r1) GET /v1/skus/:sku of a SKU at one location, through the API's whole middleware chain
 *        (createApp, in this process) with 100 connections from an autocannon child process;
 *   (r10) the same through `?channel=` over 10 locations (the channel from the process's cache,
 *        the levels in the SKU's one HMGET). Goal: (r10) / (r1) >= 0.8.
 *   Beside them, the store's read alone (StockStore.getStock, no HTTP): the stricter ratio.
 * Each pair runs in alternating rounds with the same number of concurrent callers; the table shows
 * the median rate over rounds and the median per-round ratio.
 *
 *   npm run bench:locations   (builds, then runs node build/bench/locations.js)
 *
 * A private redis-server (as the tests start theirs) and the database
 * postgres://postgres@127.0.0.1:5432/stockhold_bench_locations (DATABASE_URL), made anew each run.
 * BENCH_CONCURRENCY (64), BENCH_ROUNDS (5), BENCH_ROUND_MS (1500).
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createPool, createRedis, migrate, StockStore } from '../src/stock';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createApp } from '../src/api/app';
import { createMetrics } from '../src/api/metrics/registry';
import type { ReservationService } from '../src/api/reservations/service';
import { Counters } from '../src/stock/redis/counters';
import { WebhookStore } from '../src/webhooks/store';
import type { AutocannonResult } from './children/autocannon';
import { runJob } from './harness/procs';
import { startRedisServer } from '../test/helpers/redis-server';
import { closedLoop } from './harness/closed-loop';
import { positiveInt } from './harness/env';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/stockhold_bench_locations';
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 64);
const ROUNDS = positiveInt('BENCH_ROUNDS', 5);
const ROUND_MS = positiveInt('BENCH_ROUND_MS', 1_500);
const LOCATIONS = 10;
const GOAL = 0.8;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function freshDatabase(): Promise<void> {
  const url = new URL(DATABASE_URL);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  await migrate(DATABASE_URL);
}

/** Rates of two modes in alternating rounds (the order swapped each round): per round and median. */
async function pair(a: () => Promise<unknown>, b: () => Promise<unknown>) {
  const rounds: { a: number; b: number; ratio: number }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const rate = async (op: () => Promise<unknown>) => {
      let n = 0;
      const seconds = await closedLoop(CONCURRENCY, ROUND_MS, async () => {
        await op();
        n += 1;
      });
      return n / seconds;
    };
    let ra: number, rb: number;
    if (r % 2 === 0) {
      ra = await rate(a);
      rb = await rate(b);
    } else {
      rb = await rate(b);
      ra = await rate(a);
    }
    rounds.push({ a: ra, b: rb, ratio: rb / ra });
  }
  return {
    a: median(rounds.map((r) => r.a)),
    b: median(rounds.map((r) => r.b)),
    ratio: median(rounds.map((r) => r.ratio)),
    rounds,
  };
}

async function main(): Promise<void> {
  await freshDatabase();
  const node = await startRedisServer();
  const redis = createRedis(node.url);
  const db = createPool(DATABASE_URL);
  const store = new StockStore(redis, db);
  const counters = new Counters(redis as never, 86_400_000, () => Date.now());
  try {
    await store.counters.markLoaded('bench');
    const tag = randomUUID().slice(0, 6);
    const places = Array.from({ length: LOCATIONS }, (_, i) => `bench-wh${i}-${tag}`);
    for (const locationId of places) await store.createLocation({ locationId, name: locationId });
    const channel = `bench-ten-${tag}`;
    await store.putChannel({ channel, locations: places, strategy: 'most-available' });
    const units = 100_000_000;
    const one = `BENCH-ONE-${tag}`;
    const ten = `BENCH-TEN-${tag}`;
    await store.createSku({ sku: one, total: units * LOCATIONS });
    await store.createSku({ sku: ten, locations: Object.fromEntries(places.map((id) => [id, units])) });
    const spec = await store.channelSpec(channel);
    const defaultSpec = await store.channelSpec('default');
    const id = () => `b${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();

    const lua = await pair(
      () => counters.hold(id(), '', [{ sku: one, quantity: 1 }], '', defaultSpec),
      () => counters.hold(id(), '', [{ sku: ten, quantity: 1 }], '', spec),
    );
    const whole = await pair(
      () => store.hold({ reservationId: id(), items: [{ sku: one, quantity: 1 }], expiresAt }),
      () => store.hold({ reservationId: id(), items: [{ sku: ten, quantity: 1 }], expiresAt, channel }),
    );
    const reads = await pair(
      () => store.getStock(one),
      () => store.getStock(ten, channel),
    );
    // Over HTTP: the API's app in this process, the load from a child process.
    const app = createApp({
      config: { adminToken: 'bench-admin', apiToken: 'bench-client', maxTtlSeconds: 86_400 },
      stock: store,
      webhooks: new WebhookStore(db),
      reservations: {} as ReservationService,
      metrics: createMetrics(),
      logger: pino({ level: 'silent' }),
      checks: { redis: () => redis.ping(), postgres: () => db.query('SELECT 1'), temporal: async () => undefined },
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const http = async (path: string) =>
      (
        await runJob<AutocannonResult>(
          'autocannon',
          { url: base + path, connections: 100, durationS: 3, headers: { authorization: 'Bearer bench-client' } },
          { timeoutMs: 60_000 },
        )
      ).rps;
    const over: { a: number; b: number; ratio: number }[] = [];
    try {
      for (let r = 0; r < 3; r++) {
        const a = await http(`/v1/skus/${one}`);
        const b = await http(`/v1/skus/${ten}?channel=${channel}`);
        over.push({ a, b, ratio: b / a });
      }
    } finally {
      server.close();
    }
    const httpReads = {
      a: median(over.map((x) => x.a)),
      b: median(over.map((x) => x.b)),
      ratio: median(over.map((x) => x.ratio)),
      rounds: over,
    };
    const rows = [
      ['hold, Redis script', lua, false],
      ['hold, StockStore (Redis + PostgreSQL)', whole, true],
      ['GET /v1/skus/:sku (?channel=), 100 connections', httpReads, true],
      ['stock read alone (StockStore.getStock, no HTTP)', reads, false],
    ] as const;
    console.log(
      `\nstock per location: ${LOCATIONS} locations, most-available; ${CONCURRENCY} callers, ${ROUNDS} rounds of ${ROUND_MS} ms\n`,
    );
    console.log(
      'what'.padEnd(46),
      'one location /s'.padStart(16),
      `${LOCATIONS} locations /s`.padStart(16),
      'ratio'.padStart(7),
      'goal',
    );
    // The two goals are the hold as the service makes it and the read as a client gets it;
    // the script and the store read alone are there to show where the cost is.
    for (const [what, r, goal] of rows)
      console.log(
        what.padEnd(46),
        r.a.toFixed(0).padStart(16),
        r.b.toFixed(0).padStart(16),
        `${r.ratio.toFixed(2)}×`.padStart(7),
        !goal ? '(for the record)' : r.ratio >= GOAL ? `>= ${GOAL}: met` : `>= ${GOAL}: missed`,
      );
    console.log(
      '\nper-round ratios:',
      rows.map(([what, r]) => `${what}: ${r.rounds.map((x) => x.ratio.toFixed(2)).join(' ')}`).join('; '),
    );
  } finally {
    redis.disconnect();
    await db.end();
    await node.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
