/**
 * The reconciler and the rebuild read the catalogue page by page (the reconciler 200 SKUs a page,
 * the rebuild 500, their defaults in production) and the stale HELD reservations batch by batch.
 * Here the catalogue is one SKU longer than the rebuild's page, so both cross pages, and the SKUs
 * broken on purpose sit on the first and the last page. A database and a redis-server of this
 * file's own: both scans read every SKU there is.
 */
import { createStock, keys, type StockClients } from '../../src/stock';
import { rebuildIfLost } from '../../src/reconciler/rebuild';
import { Reconciler, type ReconcilerEvent } from '../../src/reconciler/reconciler';
import { uniqueId } from '../helpers/env';
import { startPrivateStores, type PrivateStores } from '../helpers/private-stores';
import { expectConsistent, expiresIn, figures, loseHold } from '../helpers/stock';

/** One more than the rebuild's page (500), so more than two of the reconciler's pages (200) too. */
const SKUS = 501;
const GRACE_MS = 15_000;

let own: PrivateStores | undefined;
let clients: StockClients;
/** The catalogue in the order the scans read it (PostgreSQL's ORDER BY sku). */
let catalogue: string[];

beforeAll(async () => {
  own = await startPrivateStores('stockhold_pages');
  clients = createStock({ redisUrl: own.redisUrl, databaseUrl: own.databaseUrl });
  const names = Array.from(
    { length: SKUS },
    (_, i) => `PAGE-${String(i).padStart(4, '0')}-${uniqueId('s').slice(2, 8)}`,
  );
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(
      names.slice(i, i + 20).map((sku) => clients.stock.createSku({ sku, total: 10, name: 'paged item' })),
    );
  }
  catalogue = (await clients.db.query<{ sku: string }>('SELECT sku FROM skus ORDER BY sku')).rows.map((r) => r.sku);
}, 120_000);

afterAll(async () => {
  await clients?.close();
  await own?.stop();
});

/** A reconciler on this file's stores with a clock the test moves; the kinds it repaired, per SKU. */
function reconciler(clock: { now: number }, options: { orphanChecks?: number } = {}) {
  const repaired: ReconcilerEvent[] = [];
  const r = new Reconciler(clients.stock, {
    graceMs: GRACE_MS,
    now: () => clock.now,
    running: async () => new Set(),
    report: (e) => repaired.push(e),
    ...options,
  });
  return { r, repaired };
}

test(`the reconciler repairs SKUs on its first and its last page (${SKUS} SKUs, 200 a page)`, async () => {
  expect(catalogue).toHaveLength(SKUS);
  const [first, last] = [catalogue[0]!, catalogue.at(-1)!];
  const reservationId = uniqueId('paged');
  await clients.stock.hold({ reservationId, items: [{ sku: last, quantity: 4 }], expiresAt: expiresIn() });
  // The last SKU loses its hold (repaired at once) and gets a total no movement explains (after the grace period);
  // the first one gets such a total too.
  expect(await loseHold(clients.redis, last, reservationId)).toBe(4);
  await clients.redis.hincrby(keys.stock(last), 'total', 5);
  await clients.redis.hincrby(keys.stock(first), 'total', 3);

  const clock = { now: 1_000_000 };
  const { r, repaired } = reconciler(clock);
  await r.scan();
  expect(repaired.map((e) => [e.kind, e.sku])).toEqual([['lost_hold', last]]);
  clock.now += GRACE_MS;
  await r.scan();
  expect(repaired.map((e) => [e.kind, e.sku]).sort()).toEqual([
    ['lost_hold', last],
    ['total', first],
    ['total', last],
  ]);
  for (const sku of [first, last]) await expectConsistent(clients, sku);
  expect(await clients.redis.hgetall(keys.holds(last))).toEqual({ [reservationId]: '4' });
  await clients.stock.release(reservationId, [last], 'CANCELLED');
});

test('the reconciler goes through stale HELD reservations batch after batch, releasing orphans past the first batch', async () => {
  const sku = catalogue[1]!;
  const orphans = [uniqueId('orphan'), uniqueId('orphan'), uniqueId('orphan'), uniqueId('orphan'), uniqueId('orphan')];
  for (const reservationId of orphans)
    await clients.stock.hold({ reservationId, items: [{ sku, quantity: 1 }], expiresAt: expiresIn() });
  await clients.db.query(`UPDATE reservations SET updated_at = now() - interval '1 hour' WHERE id = ANY($1::text[])`, [
    orphans,
  ]);

  const { r, repaired } = reconciler({ now: 1_000_000 }, { orphanChecks: 2 });
  // Two per scan: the fifth is released by the third scan, none before its batch comes.
  await r.scan();
  expect(repaired.filter((e) => e.kind === 'orphan')).toHaveLength(2);
  await r.scan();
  await r.scan();
  expect(
    repaired
      .filter((e) => e.kind === 'orphan')
      .map((e) => e.reservationId)
      .sort(),
  ).toEqual([...orphans].sort());
  expect(await clients.redis.hgetall(keys.holds(sku))).toEqual({});
  await expectConsistent(clients, sku);
});

test(`a full loss of Redis is rebuilt on every page (${SKUS} SKUs, 500 a page), holds of the last page included`, async () => {
  const last = catalogue.at(-1)!;
  const reservationId = uniqueId('paged');
  await clients.stock.hold({ reservationId, items: [{ sku: last, quantity: 2 }], expiresAt: expiresIn() });
  await clients.redis.flushall(); // the marker goes with the counters

  expect(await rebuildIfLost(clients.stock, { settleMs: 0 })).toBe(SKUS);
  expect(await clients.redis.exists(keys.loaded)).toBe(1);
  for (const sku of [catalogue[0]!, catalogue[499]!, last]) await expectConsistent(clients, sku);
  expect(await figures(clients, last)).toMatchObject({ redisTotal: 10, redisReserved: 2, sumOfHolds: 2, pgHeld: 2 });
  expect(await clients.redis.hgetall(keys.holds(last))).toEqual({ [reservationId]: '2' });
  const loaded = await Promise.all(catalogue.map((sku) => clients.redis.hget(keys.stock(sku), 'total')));
  expect(loaded.filter((total) => total === null)).toEqual([]);
});
