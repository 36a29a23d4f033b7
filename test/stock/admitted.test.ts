/**
 * A repeat of a request whose first attempt is on its way in Temporal, its hold not landed yet,
 * is joined to that attempt rather than refused as short (the contract: a repeat answers what the
 * reservation is, and a 409 means nothing is held). The API notes each named request it lets into
 * Temporal (StockStore.noteAdmitted); the pre-check takes a short cart under a noted id for a repeat.
 */
import { uniqueId, uniqueSku } from '../helpers/env';
import { expiresIn, newSku, testStock } from '../helpers/stock';
import { createStock } from '../../src/stock';
import { TEST_DATABASE_URL, TEST_REDIS_TARGET } from '../helpers/env';

const clients = testStock();
afterAll(() => clients.close());

test('a short cart under an id let into Temporal is a repeat, not a refusal; another id is still refused', async () => {
  const sku = uniqueSku('ADMIT');
  await newSku(clients, sku, 1);
  const items = [{ sku, quantity: 1 }];
  const first = uniqueId('first');
  // `first` was let in while the unit was there; before its hold lands, someone else takes it.
  await clients.stock.noteAdmitted(first, items);
  await clients.stock.hold({ reservationId: uniqueId('other'), items, expiresAt: expiresIn() });

  expect(await clients.stock.precheck(items, undefined, first)).toMatchObject({ refusal: undefined, repeat: true });
  const stranger = await clients.stock.precheck(items, undefined, uniqueId('stranger'));
  expect({ code: stranger.refusal?.code, repeat: stranger.repeat }).toEqual({
    code: 'INSUFFICIENT_STOCK',
    repeat: false,
  });
});

test('the note lapses: two minutes on, a short cart under that id is refused again', async () => {
  let now = Date.now();
  const timed =
    typeof TEST_REDIS_TARGET === 'string'
      ? createStock({ redisUrl: TEST_REDIS_TARGET, databaseUrl: TEST_DATABASE_URL }, { now: () => now })
      : createStock(
          { redisUrl: '', redisClusterNodes: TEST_REDIS_TARGET, databaseUrl: TEST_DATABASE_URL },
          { now: () => now },
        );
  try {
    const sku = uniqueSku('ADMIT');
    await timed.stock.createSku({ sku, total: 1 });
    const items = [{ sku, quantity: 1 }];
    const first = uniqueId('first');
    await timed.stock.noteAdmitted(first, items);
    await timed.stock.hold({ reservationId: uniqueId('other'), items, expiresAt: expiresIn() });
    expect((await timed.stock.precheck(items, undefined, first)).repeat).toBe(true);
    now += 121_000;
    expect((await timed.stock.precheck(items, undefined, first)).refusal?.code).toBe('INSUFFICIENT_STOCK');
  } finally {
    await timed.close();
  }
});
