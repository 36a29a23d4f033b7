/**
 * `done` tombstones (item:{SKU}:done) and their retention (StockStoreOptions.doneRetentionMs, 7 days
 * in production): a finished reservation's id keeps late holds out; the release and commit
 * scripts prune the entries scored before now - retention, so the set stays bounded. The store's
 * clock (`now`) is moved by the test instead of waiting. What a late hold meets once its
 * tombstone is gone is checked too: PostgreSQL still knows the reservation is final.
 */
import { createStock, keys, type StockClients } from '../../src/stock';
import { TEST_DATABASE_URL, TEST_REDIS_URL, uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expiresIn, figures, newSku, refusal } from '../helpers/stock';

const RETENTION_MS = 60_000;
const clock = { now: Date.UTC(2030, 0, 1) };
const clients: StockClients = createStock(
  { redisUrl: TEST_REDIS_URL, databaseUrl: TEST_DATABASE_URL },
  { doneRetentionMs: RETENTION_MS, now: () => clock.now },
);
const { stock } = clients;

afterAll(() => clients.close());

async function tombstones(sku: string): Promise<Record<string, number>> {
  const entries = await clients.redis.zrange(keys.done(sku), 0, -1, 'WITHSCORES');
  const byId: Record<string, number> = {};
  for (let i = 0; i < entries.length; i += 2) byId[entries[i]!] = Number(entries[i + 1]);
  return byId;
}

async function statusOf(reservationId: string): Promise<string | undefined> {
  return (await clients.db.query<{ status: string }>('SELECT status FROM reservations WHERE id = $1', [reservationId]))
    .rows[0]?.status;
}

const cartOf = (sku: string, quantity: number) => [{ sku, quantity }];

test('a late hold of a cancelled reservation within the retention window is refused by its tombstone', async () => {
  const sku = uniqueSku('TOMB');
  await newSku(clients, sku, 5);
  const id = uniqueId('late');
  await stock.hold({ reservationId: id, items: cartOf(sku, 2), expiresAt: expiresIn() });
  await stock.release(id, [sku], 'CANCELLED');
  const releasedAt = clock.now;
  expect(await tombstones(sku)).toEqual({ [id]: releasedAt });

  clock.now = releasedAt + RETENTION_MS;
  const err = await refusal(stock.hold({ reservationId: id, items: cartOf(sku, 2), expiresAt: expiresIn() }));
  expect(err.code).toBe('RESERVATION_ID_CONFLICT');
  expect(await figures(clients, sku)).toMatchObject({ redisTotal: 5, redisReserved: 0, holdCount: 0 });
  await expectConsistent(clients, sku);
});

test('a release or a commit prunes the tombstones older than the retention and keeps the fresh ones', async () => {
  const sku = uniqueSku('TOMB');
  await newSku(clients, sku, 10);
  const [old, fresh, boundary, byRelease, atEdge, byCommit] = ['old', 'fresh', 'edge', 'rel', 'at', 'com'].map((p) =>
    uniqueId(p),
  ) as [string, string, string, string, string, string];
  const start = clock.now;
  await stock.release(old, [sku], 'CANCELLED'); // a release of an id that never held: its tombstone all the same
  clock.now = start + 10_000;
  await stock.release(boundary, [sku], 'EXPIRED');
  clock.now = start + RETENTION_MS / 2;
  await stock.release(fresh, [sku], 'CANCELLED');
  expect(Object.keys(await tombstones(sku)).sort()).toEqual([old, boundary, fresh].sort());

  // One past the retention of `old`: the next release prunes it, and only it.
  clock.now = start + RETENTION_MS + 1;
  await stock.hold({ reservationId: byRelease, items: cartOf(sku, 1), expiresAt: expiresIn() });
  await stock.release(byRelease, [sku], 'CANCELLED');
  expect(await tombstones(sku)).toEqual({
    [boundary]: start + 10_000,
    [fresh]: start + RETENTION_MS / 2,
    [byRelease]: clock.now,
  });

  // `boundary` exactly as old as the retention is still kept; one millisecond later, a commit prunes it.
  clock.now = start + 10_000 + RETENTION_MS;
  await stock.release(atEdge, [sku], 'CANCELLED');
  expect(Object.keys(await tombstones(sku))).toContain(boundary);
  await stock.hold({ reservationId: byCommit, items: cartOf(sku, 1), expiresAt: expiresIn() });
  clock.now += 1;
  await stock.commit(byCommit);
  expect(Object.keys(await tombstones(sku)).sort()).toEqual([fresh, byRelease, atEdge, byCommit].sort());
  await expectConsistent(clients, sku);
});

test.each([
  ['CANCELLED', 'pruned after the retention window'],
  ['COMMITTED', 'pruned after the retention window'],
  ['EXPIRED', 'lost with Redis data'],
] as const)(
  'a late hold of a reservation that ended %s, its tombstone %s, is refused by PostgreSQL and leaves nothing held',
  async (ending, forgotten) => {
    const sku = uniqueSku('TOMB');
    await newSku(clients, sku, 5);
    const id = uniqueId('late');
    await stock.hold({ reservationId: id, items: cartOf(sku, 2), expiresAt: expiresIn() });
    if (ending === 'COMMITTED') await stock.commit(id);
    else await stock.release(id, [sku], ending);
    const before = await figures(clients, sku);

    if (forgotten === 'lost with Redis data') {
      // A failover to a replica that missed the tombstone (a rebuild after a full loss loads none either).
      await clients.redis.del(keys.done(sku));
    } else {
      // Past the retention, another reservation's release prunes it.
      clock.now += RETENTION_MS + 1;
      await stock.release(uniqueId('other'), [sku], 'CANCELLED');
    }
    expect(Object.keys(await tombstones(sku))).not.toContain(id);

    // A late hold of it (an activity attempt that outlived its reservation) is still refused.
    const err = await refusal(stock.hold({ reservationId: id, items: cartOf(sku, 2), expiresAt: expiresIn() }));
    expect(err.code).toBe('RESERVATION_ID_CONFLICT');
    expect(await statusOf(id)).toBe(ending);
    expect(await figures(clients, sku)).toEqual(before);
    expect(await clients.redis.hget(keys.holds(sku), id)).toBeNull();
    await expectConsistent(clients, sku);
  },
);
