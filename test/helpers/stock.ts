import { createStock, keys, StockholdError, type StockClients } from '../../src/stock';
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
}

export async function newSku(clients: StockClients, sku: string, total: number, name = 'test item'): Promise<void> {
  await clients.stock.createSku({ sku, total, name });
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
