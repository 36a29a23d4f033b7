/**
 * `lv`, the one field of a SKU's stock hash that repeats every level's figures (lua/includes/levels.lua)
 * so that a read through a channel takes one field instead of two per location: every script that
 * changes a level rewrites it, so a read through a channel never answers other figures than the
 * level fields (and PostgreSQL) hold, whichever write came last.
 */
import { ReconcilerStore } from '../../src/reconciler/store';
import { keys } from '../../src/stock/redis/keys';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expiresIn, loseHold, testStock } from '../helpers/stock';

const clients = testStock();
const { stock, redis } = clients;
const [EAST, WEST] = [uniqueSku('SE'), uniqueSku('SW')];
const CHANNEL = uniqueSku('sc').toLowerCase();

beforeAll(async () => {
  for (const id of [EAST, WEST]) await stock.createLocation({ locationId: id, name: id });
  await stock.putChannel({ channel: CHANNEL, locations: [EAST, WEST, 'default'], strategy: 'priority' });
});
afterAll(() => clients.close());

/** What the level fields say, as `lv` must say it; and the read through the channel agrees. */
async function expectSummaryTrue(sku: string): Promise<void> {
  const hash = await redis.hgetall(keys.stock(sku));
  const locs = (hash.locs ?? '').split(',');
  expect(hash.lv).toBe(locs.map((loc) => `${loc}=${hash[`t:${loc}`] ?? 0}/${hash[`r:${loc}`] ?? 0}`).join(','));
  const view = await stock.getStock(sku, CHANNEL);
  expect(view.locations).toEqual(
    locs
      .filter((loc) => [EAST, WEST, 'default'].includes(loc))
      .sort()
      .map((locationId) => {
        const total = Number(hash[`t:${locationId}`]);
        const reserved = Number(hash[`r:${locationId}`]);
        return { locationId, total, reserved, available: Math.max(0, total - reserved) };
      }),
  );
  await expectConsistent(clients, sku);
}

test('every kind of level write keeps the summary the reads take equal to the level fields', async () => {
  const sku = uniqueSku('LS');
  await stock.createSku({ sku, locations: { [EAST]: 5 } });
  await expectSummaryTrue(sku);

  await stock.restock(sku, { quantity: 4, locationId: WEST }); // a new level (move.lua)
  await expectSummaryTrue(sku);
  await stock.adjust(sku, { delta: -1, reason: 'damaged', locationId: EAST }); // adjust.lua
  await expectSummaryTrue(sku);
  await stock.adjust(sku, { delta: 2, reason: 'found', locationId: 'default' }); // a third level, raised
  await expectSummaryTrue(sku);
  await stock.transfer(sku, { from: WEST, to: EAST, quantity: 1 }); // transfer.lua
  await expectSummaryTrue(sku);

  const split = uniqueId();
  await stock.hold({ reservationId: split, items: [{ sku, quantity: 6 }], expiresAt: expiresIn(), channel: CHANNEL });
  await expectSummaryTrue(sku); // hold.lua, split over two levels
  await stock.commit(split, [{ sku, quantity: 5 }]); // commit.lua: sales, the rest released
  await expectSummaryTrue(sku);
  await stock.recordReturn({ reservationId: split, items: [{ sku, quantity: 2 }] });
  await expectSummaryTrue(sku);

  const cancelled = uniqueId();
  await stock.hold({
    reservationId: cancelled,
    items: [{ sku, quantity: 2 }],
    expiresAt: expiresIn(),
    channel: CHANNEL,
  });
  await expectSummaryTrue(sku);
  await stock.release(cancelled, [sku], 'CANCELLED'); // release.lua
  await expectSummaryTrue(sku);
});

/** A level field off by `by` (as a lost write leaves it), with `lv` saying the same, as a script would have. */
async function drift(sku: string, field: string, by: number): Promise<void> {
  await redis.hincrby(keys.stock(sku), field, by);
  const hash = await redis.hgetall(keys.stock(sku));
  const lv = hash.locs!.split(',').map((loc) => `${loc}=${hash[`t:${loc}`] ?? 0}/${hash[`r:${loc}`] ?? 0}`);
  await redis.hset(keys.stock(sku), 'lv', lv.join(','));
}

test('the repairs keep it too: a reload, a recount of reserved and a rebase of the levels', async () => {
  const sku = uniqueSku('LR');
  await stock.createSku({ sku, locations: { [EAST]: 3, [WEST]: 3 } });
  const held = uniqueId();
  await stock.hold({ reservationId: held, items: [{ sku, quantity: 4 }], expiresAt: expiresIn(), channel: CHANNEL });

  // load.lua: the SKU's counters rebuilt from PostgreSQL's snapshot, holds and allocations included.
  const [snapshot] = await new ReconcilerStore(clients.db).snapshot([sku]);
  await stock.counters.load(sku, snapshot!, 'force');
  await expectSummaryTrue(sku);

  // fix-reserved.lua: a level's reserved put right from the holds' allocations.
  await drift(sku, `r:${WEST}`, 1);
  await redis.hincrby(keys.stock(sku), 'reserved', 1);
  expect(await stock.counters.fixReserved(sku)).toBeDefined();
  await expectSummaryTrue(sku);

  // rebase.lua: each level's total set (the reconciler's repair of a level's total).
  const hash = await redis.hgetall(keys.stock(sku));
  await drift(sku, `t:${EAST}`, 1);
  expect(
    await stock.counters.rebase(sku, Number(hash.total), Number(hash.total), hash.mark!, `${EAST}=3,${WEST}=3`),
  ).toBe(true);
  await expectSummaryTrue(sku);

  // restore-hold.lua: a lost hold put back, with its allocation and without one (`default` whole).
  expect(await loseHold(redis, sku, held)).toBe(4);
  expect(await stock.counters.restoreHold(sku, held, 4, '', `${EAST}=3,${WEST}=1`)).toBe('restored');
  await expectSummaryTrue(sku);
  await stock.restock(sku, { quantity: 1, locationId: 'default' });
  const atDefault = uniqueId();
  await stock.hold({
    reservationId: atDefault,
    items: [{ sku, quantity: 1, locationId: 'default' }],
    expiresAt: expiresIn(),
    channel: CHANNEL,
  });
  expect(await loseHold(redis, sku, atDefault)).toBe(1);
  expect(await stock.counters.restoreHold(sku, atDefault, 1, '', '')).toBe('restored');
  await expectSummaryTrue(sku);
});
