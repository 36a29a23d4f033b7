/**
 * Redis Cluster: one master loses its data (as a master restarted empty would) while the others
 * keep theirs. The deployment's reconciler restores that node's SKUs only, from PostgreSQL; the
 * other SKUs are never touched. A cluster and a database of this file's own (it wipes a node).
 */
import { Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { keys } from '../../src/stock';
import type { ReconcilerSettings } from '../../src/reconciler/activities';
import { uniqueId, uniqueSku } from '../helpers/env';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster';
import { pollUntil, startStack, type Stack } from '../helpers/stack';
import { expectConsistent, figures } from '../helpers/stock';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const SETTINGS: ReconcilerSettings = { intervalMs: 300, graceMs: 1_000, rebuildSettleMs: 1_000 };

let cluster: RedisCluster | undefined;
let database: TestDatabase | undefined;
let stack: Stack;

beforeAll(async () => {
  [cluster, database] = await Promise.all([startRedisCluster(), createTestDatabase('stockhold_node_loss')]);
  const nodes = cluster.seeds.split(',').map((seed) => ({ host: '127.0.0.1', port: Number(seed.split(':')[1]) }));
  stack = await startStack({ redisClusterNodes: nodes, databaseUrl: database.url, reconciler: SETTINGS });
  await stack.stock.redis.set(keys.loaded, 'node-loss test setup');
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await Promise.allSettled([cluster?.stop(), database?.drop()]);
}, 60_000);

/** The master serving `sku`'s slot, connected directly. */
async function masterOf(sku: string): Promise<{ port: number; redis: Redis }> {
  const slot = calculateSlot(keys.stock(sku));
  const shards = (await stack.stock.redis.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const [, , [, port]] = shards.find(([from, to]) => slot >= from && slot <= to)!;
  return { port, redis: new Redis({ host: '127.0.0.1', port, lazyConnect: true }) };
}

test("a master that lost its data gets its SKUs back from PostgreSQL, holds included, and the other masters' SKUs are left alone", async () => {
  // SKUs until two masters serve at least one each.
  const skus: string[] = [];
  const ports = new Map<string, number>();
  while (new Set(ports.values()).size < 2 || skus.length < 6) {
    const sku = uniqueSku('NODE');
    expect((await stack.admin('POST', '/v1/skus', { body: { sku, total: 10 } })).status).toBe(201);
    skus.push(sku);
    const { port, redis } = await masterOf(sku);
    redis.disconnect();
    ports.set(sku, port);
  }
  const held = new Map<string, string>();
  for (const sku of skus) {
    const reservationId = uniqueId('node');
    const res = await stack.api('POST', '/v1/reservations', { body: { reservationId, items: [{ sku, quantity: 3 }] } });
    expect(res.status).toBe(201);
    held.set(sku, reservationId);
  }

  const victim = ports.get(skus[0]!)!;
  const lost = skus.filter((sku) => ports.get(sku) === victim);
  const kept = skus.filter((sku) => ports.get(sku) !== victim);
  const keptBefore = await Promise.all(kept.map((sku) => stack.stock.redis.hgetall(keys.stock(sku))));

  const { redis } = await masterOf(lost[0]!);
  try {
    await redis.connect();
    await redis.flushall(); // only this master's slots
  } finally {
    redis.disconnect();
  }
  expect(await stack.stock.redis.exists(keys.stock(lost[0]!))).toBe(0);
  // Meanwhile its SKUs answer 503, never "does not exist" or "plenty".
  expect((await stack.api('GET', `/v1/skus/${lost[0]}`)).status).toBe(503);

  for (const sku of lost) {
    const f = await pollUntil(
      () => figures(stack.stock, sku),
      (x) => x.redisTotal === 10 && x.redisReserved === 3,
      20_000,
    );
    expect(f).toMatchObject({ redisTotal: 10, redisReserved: 3, holdCount: 1 });
    expect(await stack.stock.redis.hget(keys.holds(sku), held.get(sku)!)).toBe('3');
    await expectConsistent(stack.stock, sku);
  }
  // The other masters' counters were never rewritten (same figures, same mark).
  const keptAfter = await Promise.all(kept.map((sku) => stack.stock.redis.hgetall(keys.stock(sku))));
  expect(keptAfter).toEqual(keptBefore);
  // The restored holds still commit, exactly once.
  const commit = await stack.api('POST', `/v1/reservations/${held.get(lost[0]!)}/commit`, { body: {} });
  expect(commit.status).toBe(200);
  await expectConsistent(stack.stock, lost[0]!);
});
