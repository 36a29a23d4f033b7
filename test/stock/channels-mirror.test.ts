/**
 * Redis's copy of the channels (stockhold:channels, what the reads through a channel use) kept
 * right by the reconciler: a copy that differs from PostgreSQL's (a write whose Redis step failed)
 * is replaced and counted, after the grace period; one Redis does not have is written without a
 * repair to count, as a read that misses it would. The reconciler scans every SKU of the shared
 * test stores too, so only its channel events and Redis's copy are looked at here.
 */
import { Reconciler } from '../../src/reconciler/reconciler';
import { keys } from '../../src/stock';
import { uniqueSku } from '../helpers/env';
import { testStock } from '../helpers/stock';

const clients = testStock();
const { stock, redis } = clients;

afterAll(() => clients.close());

function reconciler(graceMs: number, now: () => number = Date.now) {
  const events: { kind: string; detail: Record<string, unknown> }[] = [];
  const r = new Reconciler(stock, {
    graceMs,
    now,
    running: async (ids) => new Set(ids),
    report: (e) => {
      if (e.kind === 'channels') events.push({ kind: e.kind, detail: e.detail });
    },
  });
  return { r, events };
}

const mirrored = async (name: string) => JSON.parse((await redis.hget(keys.channels, name)) ?? 'null');

test('a channel whose copy in Redis differs is put back as PostgreSQL has it once the grace period passed, and counted', async () => {
  const name = uniqueSku('web');
  await stock.putChannel({ channel: name, locations: ['default'], strategy: 'priority' });
  // A later write whose Redis step failed: PostgreSQL has most-available, Redis the old copy.
  await clients.db.query(`UPDATE channels SET strategy = 'most-available' WHERE channel = $1`, [name]);
  let now = 1_000;
  const { r, events } = reconciler(5_000, () => now);
  await r.scan(); // seen, not yet for the grace period
  expect(events).toEqual([]);
  expect(await mirrored(name)).toEqual({ locations: ['default'], strategy: 'priority' });
  now += 5_000;
  await r.scan();
  expect(await mirrored(name)).toEqual({ locations: ['default'], strategy: 'most-available' });
  expect(events).toEqual([{ kind: 'channels', detail: { channels: [name] } }]);
  await r.scan();
  expect(events).toHaveLength(1);
});

test('a channel Redis lost is written back at the next scan, with no repair counted', async () => {
  const name = uniqueSku('app');
  await stock.putChannel({ channel: name, locations: ['default'], strategy: 'most-available' });
  await redis.hdel(keys.channels, name);
  const { r, events } = reconciler(60_000);
  await r.scan();
  expect(await mirrored(name)).toEqual({ locations: ['default'], strategy: 'most-available' });
  expect(events).toEqual([]);
});
