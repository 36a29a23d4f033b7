/**
 * The reconciler handed over (its worker died or shut down, another runs it now): the next run
 * goes on from the observations of the last one (heartbeat details, or the previous run's result
 * through the workflow), so a difference already older than the grace period is repaired at the
 * next scan instead of waiting a whole grace period again. A PostgreSQL database and a
 * redis-server of this file's own: a scan reads every SKU.
 */
import { createStock, keys, type StockClients } from '../../src/stock';
import { Reconciler } from '../../src/reconciler/reconciler';
import { uniqueId, uniqueSku } from '../helpers/env';
import { startPrivateStores, type PrivateStores } from '../helpers/private-stores';
import { newSku } from '../helpers/stock';

const GRACE_MS = 15_000;

let own: PrivateStores | undefined;
let clients: StockClients;

beforeAll(async () => {
  own = await startPrivateStores('stockhold_handover');
  clients = createStock({ redisUrl: own.redisUrl, databaseUrl: own.databaseUrl });
}, 60_000);

afterAll(async () => {
  await clients?.close();
  await own?.stop();
});

it('a reconciler that takes over goes on counting the grace period from when the difference was first seen', async () => {
  const sku = uniqueSku('HAND');
  await newSku(clients, sku, 10);
  // A phantom hold: in Redis, with no reservation anywhere.
  const ghost = uniqueId('ghost');
  await clients.redis.multi().hset(keys.holds(sku), ghost, 2).hincrby(keys.stock(sku), 'reserved', 2).exec();

  let now = 1_000_000;
  const reconciler = () => {
    const repaired: string[] = [];
    const r = new Reconciler(clients.stock, {
      graceMs: GRACE_MS,
      now: () => now,
      running: async () => new Set(),
      report: (e) => repaired.push(e.kind),
    });
    return { r, repaired };
  };
  const first = reconciler();
  await first.r.scan();
  expect(first.repaired).toEqual([]); // seen, younger than the grace period
  const handedOver = first.r.observations();
  expect(handedOver).toContainEqual(expect.objectContaining({ since: 1_000_000 }));

  now += GRACE_MS;
  const fresh = reconciler(); // negative control: a reconciler starting from nothing
  await fresh.r.scan();
  expect(fresh.repaired).toEqual([]);
  expect(await clients.redis.hget(keys.holds(sku), ghost)).toBe('2');

  const heir = reconciler();
  heir.r.restore(JSON.parse(JSON.stringify(handedOver)) as typeof handedOver); // as it travels: JSON
  await heir.r.scan();
  expect(heir.repaired).toEqual(['phantom_hold']);
  expect(await clients.redis.hget(keys.holds(sku), ghost)).toBeNull();
  expect(await clients.redis.hget(keys.stock(sku), 'reserved')).toBe('0');
});
