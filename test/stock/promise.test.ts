/**
 * PostgreSQL's last word on holds (DESIGN.md invariant 1a), at the stock module: a hold Redis
 * applies after losing another reservation's hold is refused by PostgreSQL, given back in Redis on
 * every slot group it took, fenced for its run, and counted as unexplained drift. Runs on the single
 * Redis and, through test/cluster/promise.test.ts, on the 3-master cluster (carts span slots there).
 */
import calculateSlot from 'cluster-key-slot';
import { keys, REFUSED_HOLD } from '../../src/stock';
import { REDIS_MODE, uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expiresIn, figures, loseHold, newSku, refusal, testStock } from '../helpers/stock';

const clients = testStock();
const { stock } = clients;

afterAll(() => clients.close());

async function refusedHolds(): Promise<number> {
  const row = await clients.db.query<{ count: string }>('SELECT count FROM reconciler_counts WHERE kind = $1', [
    `unexplained:${REFUSED_HOLD}`,
  ]);
  return Number(row.rows[0]?.count ?? 0);
}

/** Two SKUs on different slots (different masters are likely on the cluster; the slots differ for sure). */
function twoSlots(): [string, string] {
  for (;;) {
    const [a, b] = [uniqueSku('PA'), uniqueSku('PB')];
    if (calculateSlot(keys.stock(a)) !== calculateSlot(keys.stock(b))) return [a, b];
  }
}

test(`a cart whose second SKU lost a hold in Redis is refused by PostgreSQL and holds nothing on either SKU (${REDIS_MODE})`, async () => {
  const [plenty, scarce] = twoSlots();
  await newSku(clients, plenty, 10);
  await newSku(clients, scarce, 2);
  const first = uniqueId('first');
  await stock.hold({ reservationId: first, items: [{ sku: scarce, quantity: 2 }], expiresAt: expiresIn() });
  await loseHold(clients.redis, scarce, first);
  const counted = await refusedHolds();

  const cart = {
    reservationId: uniqueId('cart'),
    run: 'run-1',
    items: [
      { sku: plenty, quantity: 3 },
      { sku: scarce, quantity: 2 },
    ],
    expiresAt: expiresIn(),
  };
  const err = await refusal(stock.hold(cart));
  expect({ code: err.code, details: err.details }).toEqual({
    code: 'INSUFFICIENT_STOCK',
    details: { sku: scarce, requested: 2, available: 0 },
  });
  for (const sku of [plenty, scarce]) expect(await clients.redis.hexists(keys.holds(sku), cart.reservationId)).toBe(0);
  expect((await figures(clients, plenty)).redisReserved).toBe(0);
  expect((await clients.db.query('SELECT 1 FROM reservations WHERE id = $1', [cart.reservationId])).rowCount).toBe(0);
  expect(await refusedHolds()).toBe(counted + 1);

  // A late attempt of the refused run is fenced off (as a run that gave up is), even with units free…
  await stock.restock(plenty, { quantity: 1 });
  expect((await refusal(stock.hold(cart))).code).toBe('RESERVATION_ID_CONFLICT');
  expect(await clients.redis.hexists(keys.holds(plenty), cart.reservationId)).toBe(0);
  // …and the earlier promise is kept: its commit sells both units.
  await stock.commit(first);
  expect((await figures(clients, scarce)).pgTotal).toBe(0);
  await expectConsistent(clients, plenty);
});

test('a retry of a hold PostgreSQL recorded is not refused by its own units', async () => {
  const sku = uniqueSku('PR');
  await newSku(clients, sku, 2);
  const hold = { reservationId: uniqueId('r'), run: 'run-1', items: [{ sku, quantity: 2 }], expiresAt: expiresIn() };
  expect(await stock.hold(hold)).toEqual({ alreadyHeld: false });
  expect(await stock.hold(hold)).toEqual({ alreadyHeld: true });
  await expectConsistent(clients, sku);
});

test('an adjustment may not take total below what PostgreSQL has promised, even when Redis lost the hold', async () => {
  const sku = uniqueSku('PADJ');
  await newSku(clients, sku, 5);
  const held = uniqueId('held');
  await stock.hold({ reservationId: held, items: [{ sku, quantity: 4 }], expiresAt: expiresIn() });
  await loseHold(clients.redis, sku, held);
  const err = await refusal(stock.adjust(sku, { delta: -2, reason: 'shrinkage' }));
  expect(err.code).toBe('WOULD_OVERSELL');
  expect((await figures(clients, sku)).pgTotal).toBe(5);
  // One unit is not promised: that one may go.
  await stock.adjust(sku, { delta: -1, reason: 'shrinkage' });
  await stock.commit(held);
  expect((await figures(clients, sku)).pgTotal).toBe(0);
});
