import { createStock, keys, type StockClients } from '../../src/stock';
import { StockholdError } from '../../src/domain/errors';
import { TEST_DATABASE_URL, TEST_REDIS_TARGET, uniqueId } from './env';

/** The stock module over the run's stores: its single Redis, or its cluster in a cluster-mode file. */
export function testStock(redis: string | { host: string; port: number }[] = TEST_REDIS_TARGET): StockClients {
  return typeof redis === 'string'
    ? createStock({ redisUrl: redis, databaseUrl: TEST_DATABASE_URL })
    : createStock({ redisUrl: '', redisClusterNodes: redis, databaseUrl: TEST_DATABASE_URL });
}

/** Figures of one SKU as both stores see them, to check DESIGN.md's invariants. */
export async function figures(clients: StockClients, sku: string) {
  const [total, reserved] = await clients.redis.hmget(keys.stock(sku), 'total', 'reserved');
  const holds = await clients.redis.hgetall(keys.holds(sku));
  const pg = await clients.db.query<{ total: string; held: string; ledger: string }>(
    `SELECT s.total,
            (SELECT COALESCE(SUM(l.quantity), 0) FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
              WHERE l.sku = s.sku AND r.status = 'HELD') AS held,
            (SELECT COALESCE(SUM(delta), 0) FROM stock_movements m WHERE m.sku = s.sku) AS ledger
       FROM skus s WHERE s.sku = $1`,
    [sku],
  );
  const row = pg.rows[0];
  return {
    redisTotal: total === null ? null : Number(total),
    redisReserved: reserved === null ? null : Number(reserved),
    sumOfHolds: Object.values(holds).reduce((sum, q) => sum + Number(q), 0),
    holdCount: Object.keys(holds).length,
    pgTotal: row ? Number(row.total) : null,
    pgHeld: row ? Number(row.held) : null,
    ledgerSum: row ? Number(row.ledger) : null,
  };
}

/** DESIGN.md invariants 1 and 3 for a SKU when nothing is in flight. */
export async function expectConsistent(clients: StockClients, sku: string): Promise<void> {
  const f = await figures(clients, sku);
  expect(f.redisReserved).toBeGreaterThanOrEqual(0);
  expect(f.redisReserved!).toBeLessThanOrEqual(f.redisTotal!);
  expect(f.redisTotal).toBe(f.pgTotal);
  expect(f.redisReserved).toBe(f.sumOfHolds);
  expect(f.sumOfHolds).toBe(f.pgHeld);
  expect(f.ledgerSum).toBe(f.pgTotal);
  await expectLevelsConsistent(clients, sku);
  await expectRedisLevels(clients, sku);
}

/**
 * Redis's levels of a SKU (lua/includes/levels.lua) agree with PostgreSQL's when nothing is in
 * flight: without `locs`, PostgreSQL has one level, `default`; with it, the same locations, each
 * `t:`/`r:` its level's total and reserved, and each hold's allocation (`a:`, `default` whole
 * when absent) PostgreSQL's.
 */
export async function expectRedisLevels(clients: Pick<StockClients, 'db' | 'redis'>, sku: string): Promise<void> {
  const stock = await clients.redis.hgetall(keys.stock(sku));
  const holds = await clients.redis.hgetall(keys.holds(sku));
  const { rows } = await clients.db.query<{ location_id: string; total: string; reserved: string }>(
    'SELECT location_id, total, reserved FROM stock_levels WHERE sku = $1 ORDER BY location_id',
    [sku],
  );
  const pg = Object.fromEntries(rows.map((r) => [r.location_id, [Number(r.total), Number(r.reserved)]]));
  if (stock.locs === undefined) {
    expect(Object.keys(pg).filter((loc) => loc !== 'default')).toEqual([]);
    expect(Object.keys(stock).filter((f) => /^[tra]:/.test(f) || f === 'lv')).toEqual([]);
    return;
  }
  const redis = Object.fromEntries(
    stock.locs.split(',').map((loc) => [loc, [Number(stock[`t:${loc}`]), Number(stock[`r:${loc}`])]]),
  );
  expect(redis).toEqual(pg);
  // `lv`, what the reads through a channel take, repeats exactly what the level fields say.
  expect(stock.lv).toBe(
    stock.locs
      .split(',')
      .map((loc) => `${loc}=${stock[`t:${loc}`]}/${stock[`r:${loc}`]}`)
      .join(','),
  );
  const allocations = await clients.db.query<{ reservation_id: string; allocation: string }>(
    `SELECT a.reservation_id, string_agg(a.location_id || '=' || a.quantity, ',' ORDER BY a.position) AS allocation
       FROM reservation_allocations a JOIN reservations r ON r.id = a.reservation_id AND r.status = 'HELD'
      WHERE a.sku = $1 GROUP BY a.reservation_id`,
    [sku],
  );
  const inPg = Object.fromEntries(allocations.rows.map((r) => [r.reservation_id, r.allocation]));
  const inRedis = Object.fromEntries(
    Object.entries(holds).map(([id, quantity]) => [id, stock[`a:${id}`] ?? `default=${quantity}`]),
  );
  expect(inRedis).toEqual(inPg);
  expect(Object.keys(stock).filter((f) => f.startsWith('a:') && holds[f.slice(2)] === undefined)).toEqual([]);
}

/**
 * PostgreSQL's levels of a SKU agree with its row and its ledger: each level's total is the sum of
 * its location's movements, each level's reserved the sum of its HELD reservations' allocations,
 * the levels sum to `skus.total` and `skus.reserved`, and every HELD line is allocated whole.
 */
export async function expectLevelsConsistent(clients: Pick<StockClients, 'db'>, sku: string): Promise<void> {
  const { rows } = await clients.db.query<{
    levels: string;
    ledger: string;
    held: string;
    sums: string;
    lines: string;
  }>(
    `SELECT
       (SELECT COALESCE(jsonb_object_agg(location_id, jsonb_build_array(total, reserved)), '{}')::text
          FROM stock_levels WHERE sku = $1) AS levels,
       (SELECT COALESCE(jsonb_object_agg(location_id, t), '{}')::text
          FROM (SELECT location_id, sum(delta) AS t FROM stock_movements WHERE sku = $1 GROUP BY location_id) m) AS ledger,
       (SELECT COALESCE(jsonb_object_agg(location_id, h), '{}')::text
          FROM (SELECT a.location_id, sum(a.quantity) AS h FROM reservation_allocations a
                  JOIN reservations r ON r.id = a.reservation_id AND r.status = 'HELD'
                 WHERE a.sku = $1 GROUP BY a.location_id) x) AS held,
       (SELECT jsonb_build_array(k.total, k.reserved, COALESCE(sum(v.total), 0), COALESCE(sum(v.reserved), 0))::text
          FROM skus k LEFT JOIN stock_levels v ON v.sku = k.sku WHERE k.sku = $1 GROUP BY k.total, k.reserved) AS sums,
       (SELECT count(*)::text FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id AND r.status = 'HELD'
         WHERE l.sku = $1 AND l.quantity <> (SELECT COALESCE(sum(a.quantity), 0) FROM reservation_allocations a
                                              WHERE a.reservation_id = l.reservation_id AND a.sku = l.sku)) AS lines`,
    [sku],
  );
  const r = rows[0]!;
  const levels = JSON.parse(r.levels) as Record<string, [number, number]>;
  const ledger = JSON.parse(r.ledger) as Record<string, number>;
  const held = JSON.parse(r.held) as Record<string, number>;
  const [total, reserved, levelTotal, levelReserved] = JSON.parse(r.sums ?? '[0,0,0,0]') as number[];
  expect(Object.fromEntries(Object.entries(levels).map(([loc, [t]]) => [loc, Number(t)]))).toEqual(
    Object.fromEntries(Object.entries(ledger).map(([loc, t]) => [loc, Number(t)])),
  );
  for (const [loc, [, res]] of Object.entries(levels))
    expect([loc, Number(res)]).toEqual([loc, Number(held[loc] ?? 0)]);
  expect([Number(levelTotal), Number(levelReserved)]).toEqual([Number(total), Number(reserved)]);
  expect(Number(r.lines)).toBe(0);
}

export async function newSku(clients: StockClients, sku: string, total: number, name = 'test item'): Promise<void> {
  await clients.stock.createSku({ sku, total, name });
}

/** The readiness checks of an app over these stores alone (Temporal taken as up: these apps never reach it). */
export function storeChecks(clients: Pick<StockClients, 'redis' | 'db'>) {
  return {
    redis: () => clients.redis.ping(),
    postgres: () => clients.db.query('SELECT 1'),
    temporal: async () => undefined,
  };
}

export function expiresIn(ms = 600_000): string {
  return new Date(Date.now() + ms).toISOString();
}

export function holdOf(sku: string, quantity: number, reservationId = uniqueId()) {
  return { reservationId, items: [{ sku, quantity }], expiresAt: expiresIn() };
}

/** The StockholdError a call is refused with; fails the test when the call succeeds. */
export async function refusal(promise: Promise<unknown>): Promise<StockholdError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof StockholdError) return err;
    throw err;
  }
  throw new Error('expected a refusal, but the call succeeded');
}

// Drops a reservation's hold of a SKU as a replica that missed its writes would have it: the
// hold, `reserved` lowered by it, and its customer's held count. KEYS: stock, holds, customers.
// ARGV: reservationId. Returns the units dropped (0 when it held nothing).
const LOSE_HOLD = `
local quantity = redis.call('HGET', KEYS[2], ARGV[1])
if not quantity then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(quantity))
local customer = redis.call('HGET', KEYS[3], 'o:' .. ARGV[1])
if customer then
  redis.call('HDEL', KEYS[3], 'o:' .. ARGV[1])
  redis.call('HINCRBY', KEYS[3], 'h:' .. customer, -tonumber(quantity))
end
return tonumber(quantity)
`;

/** Makes Redis lose a reservation's hold of `sku` (a failover to a lagging replica); the units dropped. */
export async function loseHold(redis: StockClients['redis'], sku: string, reservationId: string): Promise<number> {
  return Number(await redis.eval(LOSE_HOLD, 3, keys.stock(sku), keys.holds(sku), keys.customers(sku), reservationId));
}
