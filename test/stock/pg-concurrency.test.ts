/**
 * Concurrent multi-SKU holds, commits and releases in PostgreSQL: many reservations over
 * overlapping SKU sets, each cart in its own order, committed (wholly or partly) and released at
 * once through StockStore. Every writer locks its SKUs' rows in one shared order (Ledger.lockSkus),
 * so none may fail with a deadlock (40P01); every reservation ends final, the stores consistent.
 * A pool that pauses before each statement of a transaction widens the windows in which two
 * transactions hold some of their locks and want the others. The negative control shows the same
 * carts, locked in their own order, do deadlock here: the test can see one.
 */
import type { Pool, PoolClient } from 'pg';
import { StockStore, transaction } from '../../src/stock';
import { StockholdError } from '../../src/domain/errors';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expiresIn, newSku, testStock } from '../helpers/stock';

const clients = testStock();

afterAll(() => clients.close());

/** A deterministic pseudo-random sequence, so a failure shows the same carts again. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

/** The pool, with every statement of a transaction delayed by up to `maxMs` (its locks held meanwhile). */
function slowTransactions(pool: Pool, maxMs: number, next: () => number): Pool {
  const slow = (client: PoolClient): PoolClient =>
    new Proxy(client, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (prop !== 'query' || typeof value !== 'function')
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return async (...args: unknown[]) => {
          await new Promise((r) => setTimeout(r, Math.floor(next() * maxMs)));
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      },
    });
  return new Proxy(pool, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (prop === 'connect') return async () => slow(await target.connect());
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const isDeadlock = (err: unknown) => (err as { code?: string } | null)?.code === '40P01';

test('the same carts locked in their own cart order deadlock (negative control: the test sees a 40P01)', async () => {
  const [a, b] = [uniqueSku('DL'), uniqueSku('DL')];
  await newSku(clients, a, 10);
  await newSku(clients, b, 10);
  // Each takes its first SKU, waits until the other has taken its own, then wants the other's.
  let arrived = 0;
  let bothHold!: () => void;
  const barrier = new Promise<void>((resolve) => (bothHold = resolve));
  const lockInCartOrder = (skus: string[]) =>
    transaction(clients.db, async (c) => {
      await c.query('SELECT 1 FROM skus WHERE sku = $1 FOR UPDATE', [skus[0]]);
      if (++arrived === 2) bothHold();
      await barrier;
      await c.query('SELECT 1 FROM skus WHERE sku = $1 FOR UPDATE', [skus[1]]);
    });
  const results = await Promise.allSettled([lockInCartOrder([a, b]), lockInCartOrder([b, a])]);
  expect(results.filter((r) => r.status === 'rejected' && isDeadlock(r.reason))).toHaveLength(1);
});

type Ending = 'COMMITTED' | 'PARTLY COMMITTED' | 'CANCELLED' | 'EXPIRED' | 'HELD';
const ENDINGS: readonly Ending[] = ['COMMITTED', 'PARTLY COMMITTED', 'CANCELLED', 'EXPIRED', 'HELD'];

test('many reservations over overlapping SKUs in different orders, held, committed and released at once: no deadlock, all final, consistent', async () => {
  const next = random(15);
  const skus = Array.from({ length: 5 }, () => uniqueSku('PGC'));
  for (const sku of skus) await newSku(clients, sku, 1_000);
  const store = new StockStore(clients.redis, slowTransactions(clients.db, 4, next));

  // 60 carts of 2 to 4 of the 5 SKUs, each in a shuffled order, each with the ending its index says.
  const carts = Array.from({ length: 60 }, (_, i) => {
    const order = [...skus].sort(() => next() - 0.5).slice(0, 2 + Math.floor(next() * 3));
    const items = order.map((sku) => ({ sku, quantity: 1 + Math.floor(next() * 3) }));
    return {
      hold: { reservationId: uniqueId('pgc'), items, expiresAt: expiresIn() },
      ending: ENDINGS[i % ENDINGS.length]!,
    };
  });
  const errors: unknown[] = [];
  const settle = (call: () => Promise<unknown>) =>
    call().then(
      () => undefined,
      (err: unknown) => void errors.push(err),
    );
  // Each ending goes through the SKUs in another order than the hold did (reversed).
  const end = ({ hold, ending }: (typeof carts)[number]) => {
    const reversed = [...hold.items].reverse();
    switch (ending) {
      case 'COMMITTED':
        return settle(() => store.commit(hold.reservationId));
      case 'PARTLY COMMITTED':
        return settle(() =>
          store.commit(
            hold.reservationId,
            reversed.slice(0, 2).map((l) => ({ sku: l.sku, quantity: 1 })),
          ),
        );
      case 'HELD':
        return settle(() => store.hold(hold)); // a retried hold
      default:
        return settle(() =>
          store.release(
            hold.reservationId,
            reversed.map((l) => l.sku),
            ending,
          ),
        );
    }
  };

  const [early, late] = [carts.slice(0, 30), carts.slice(30)];
  await Promise.all(early.map((cart) => settle(() => store.hold(cart.hold))));
  // The second half is held while the first half ends; then the second half ends while the first half's endings are repeated (at least once).
  await Promise.all([...late.map((cart) => settle(() => store.hold(cart.hold))), ...early.map(end)]);
  await Promise.all(carts.map(end));

  expect(errors.filter(isDeadlock)).toEqual([]);
  expect(errors.map((err) => (err instanceof StockholdError ? `${err.code}: ${err.message}` : String(err)))).toEqual(
    [],
  );
  const ids = carts.map((c) => c.hold.reservationId);
  const rows = await clients.db.query<{ id: string; status: string; sales: string }>(
    `SELECT r.id, r.status, (SELECT count(*) FROM stock_movements m WHERE m.reservation_id = r.id AND m.kind = 'sale') AS sales
       FROM reservations r WHERE r.id = ANY($1::text[])`,
    [ids],
  );
  const found = new Map(rows.rows.map((r) => [r.id, { status: r.status, sales: Number(r.sales) }]));
  for (const { hold, ending } of carts) {
    const expected = {
      status: ending === 'PARTLY COMMITTED' ? 'COMMITTED' : ending,
      sales: ending === 'COMMITTED' ? hold.items.length : ending === 'PARTLY COMMITTED' ? 2 : 0,
    };
    expect({ id: hold.reservationId, ...found.get(hold.reservationId) }).toEqual({
      id: hold.reservationId,
      ...expected,
    });
  }
  for (const sku of skus) await expectConsistent(clients, sku);
});
