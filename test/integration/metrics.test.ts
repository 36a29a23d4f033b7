/**
 * The metrics that tell the story (GET /metrics), through the real API, Temporal, Redis and a
 * PostgreSQL database of this file's own (so the deployment-wide counts are this file's alone):
 * reservations by the status they reached, refusals by code, the outbox and its lag, and stock
 * gauges for the SKUs an admin watches, bounded in number.
 */
import { uniqueId, uniqueSku } from '../helpers/env';
import { startPrivateStores, type PrivateStores } from '../helpers/private-stores';
import { pollUntil, startStack, type Stack } from '../helpers/stack';

const WATCH_LIMIT = 2;

let stores: PrivateStores | undefined;
let stack: Stack;

beforeAll(async () => {
  stores = await startPrivateStores('stockhold_metrics');
  stack = await startStack({ redisUrl: stores.redisUrl, databaseUrl: stores.databaseUrl, watchedSkusMax: WATCH_LIMIT });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await stores?.stop();
}, 60_000);

/** Every sample of /metrics: `name{labels}` → value. */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${stack.url}/metrics`);
  expect(res.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

const reservations = (samples: Map<string, number>, status: string) =>
  samples.get(`stockhold_reservations_total{status="${status}"}`);

async function newSku(total: number): Promise<string> {
  const sku = uniqueSku('MET');
  expect((await stack.admin('POST', '/v1/skus', { body: { sku, total } })).status).toBe(201);
  return sku;
}

describe('stockhold_reservations_total: each reservation once per status it reached, deployment-wide from PostgreSQL', () => {
  it('counts held, committed, cancelled and expired once each; a repeated request or commit adds nothing; a refusal is counted by its code', async () => {
    const before = await scrape();
    expect(reservations(before, 'held')).toBe(0); // a fresh database: the series are there, at 0
    const sku = await newSku(10);

    const committed = uniqueId('met-c');
    const body = { reservationId: committed, items: [{ sku, quantity: 1 }] };
    expect((await stack.api('POST', '/v1/reservations', { body })).status).toBe(201);
    expect((await stack.api('POST', '/v1/reservations', { body })).status).toBe(200); // a repeat
    expect((await stack.api('POST', `/v1/reservations/${committed}/commit`, { body: {} })).status).toBe(200);
    expect((await stack.api('POST', `/v1/reservations/${committed}/commit`, { body: {} })).status).toBe(200); // a resent commit

    const cancelled = uniqueId('met-x');
    expect(
      (
        await stack.api('POST', '/v1/reservations', {
          body: { reservationId: cancelled, items: [{ sku, quantity: 2 }] },
        })
      ).status,
    ).toBe(201);
    expect(
      (await stack.api('POST', `/v1/reservations/${cancelled}/cancel`, { body: { reason: 'changed mind' } })).status,
    ).toBe(200);

    const expired = uniqueId('met-e');
    expect(
      (
        await stack.api('POST', '/v1/reservations', {
          body: { reservationId: expired, items: [{ sku, quantity: 1 }], ttlSeconds: 1 },
        })
      ).status,
    ).toBe(201);
    await pollUntil(
      () => stack.api('GET', `/v1/reservations/${expired}`),
      (r) => r.body.status === 'EXPIRED',
      15_000,
    );

    const refused = await stack.api('POST', '/v1/reservations', { body: { items: [{ sku, quantity: 50 }] } });
    expect(refused.status).toBe(409);
    const code = refused.body.error.code as string;

    const after = await pollUntil(scrape, (s) => reservations(s, 'expired') === 1);
    expect(
      ['held', 'committed', 'cancelled', 'expired', 'rejected'].map((status) => [status, reservations(after, status)]),
    ).toEqual([
      ['held', 3],
      ['committed', 1],
      ['cancelled', 1],
      ['expired', 1],
      ['rejected', 0],
    ]);
    const refusals = (s: Map<string, number>) => s.get(`stockhold_reservation_refusals_total{code="${code}"}`) ?? 0;
    expect(refusals(after) - refusals(before)).toBe(1);
    const repeats = (s: Map<string, number>) => s.get('stockhold_reservation_results_total{outcome="REPEAT"}') ?? 0;
    expect(repeats(after) - repeats(before)).toBe(1);
  }, 60_000);
});

describe('stock gauges for watched SKUs (GET/PUT/DELETE /v1/metrics/watched-skus)', () => {
  const units = (s: Map<string, number>, sku: string, figure: string) =>
    s.get(`stockhold_stock_units{sku="${sku}",figure="${figure}"}`);

  it('a watched SKU has total, reserved and available gauges that follow its holds; unwatched, its series leave /metrics', async () => {
    const sku = await newSku(7);
    const other = await newSku(3);
    expect(units(await scrape(), sku, 'total')).toBeUndefined(); // not watched: no series

    const watched = await stack.admin('PUT', `/v1/metrics/watched-skus/${sku}`);
    expect(watched.status).toBe(200);
    expect(watched.body).toEqual({ skus: [sku], limit: WATCH_LIMIT });
    expect((await stack.admin('PUT', `/v1/metrics/watched-skus/${sku}`)).body).toEqual({
      skus: [sku],
      limit: WATCH_LIMIT,
    }); // idempotent
    expect((await stack.api('POST', '/v1/reservations', { body: { items: [{ sku, quantity: 2 }] } })).status).toBe(201);
    expect((await stack.admin('PATCH', `/v1/skus/${sku}`, { body: { lowStockThreshold: 4 } })).status).toBe(200);

    const samples = await scrape();
    expect([units(samples, sku, 'total'), units(samples, sku, 'reserved'), units(samples, sku, 'available')]).toEqual([
      7, 2, 5,
    ]);
    expect(samples.get(`stockhold_stock_low_threshold_units{sku="${sku}"}`)).toBe(4);
    expect(units(samples, other, 'total')).toBeUndefined();

    expect((await stack.admin('DELETE', `/v1/metrics/watched-skus/${sku}`)).body).toEqual({
      skus: [],
      limit: WATCH_LIMIT,
    });
    expect((await stack.admin('DELETE', `/v1/metrics/watched-skus/${sku}`)).status).toBe(200); // idempotent
    expect(units(await scrape(), sku, 'total')).toBeUndefined();
  });

  it('a watched SKU stocked at two locations also has a series per location (stockhold_stock_location_units)', async () => {
    const at = [uniqueSku('MWH'), uniqueSku('MWH')];
    for (const locationId of at)
      expect((await stack.admin('POST', '/v1/locations', { body: { locationId, name: locationId } })).status).toBe(201);
    const sku = uniqueSku('MLOC');
    const created = await stack.admin('POST', '/v1/skus', { body: { sku, locations: { [at[0]!]: 2, [at[1]!]: 5 } } });
    expect(created.status).toBe(201);
    expect((await stack.admin('PUT', `/v1/metrics/watched-skus/${sku}`)).status).toBe(200);
    try {
      const pinned = { items: [{ sku, quantity: 3, locationId: at[1] }] };
      const held = await stack.api('POST', '/v1/reservations', { body: pinned });
      expect({ status: held.status, error: held.body?.error }).toEqual({ status: 201, error: undefined });
      const samples = await scrape();
      const level = (location: string, figure: string) =>
        samples.get(`stockhold_stock_location_units{sku="${sku}",location="${location}",figure="${figure}"}`);
      expect([level(at[0]!, 'total'), level(at[0]!, 'reserved'), level(at[0]!, 'available')]).toEqual([2, 0, 2]);
      expect([level(at[1]!, 'total'), level(at[1]!, 'reserved'), level(at[1]!, 'available')]).toEqual([5, 3, 2]);
      expect(units(samples, sku, 'total')).toBe(7);
    } finally {
      expect((await stack.admin('DELETE', `/v1/metrics/watched-skus/${sku}`)).status).toBe(200);
    }
  });

  it(`refuses a SKU beyond METRICS_WATCHED_SKUS_MAX (${WATCH_LIMIT}) with 409 WATCH_LIMIT_REACHED and changes nothing; an unknown SKU is 404; a client token is 403`, async () => {
    const [a, b, c] = [await newSku(1), await newSku(1), await newSku(1)];
    expect((await stack.admin('PUT', `/v1/metrics/watched-skus/${a}`)).status).toBe(200);
    expect((await stack.admin('PUT', `/v1/metrics/watched-skus/${b}`)).status).toBe(200);
    const over = await stack.admin('PUT', `/v1/metrics/watched-skus/${c}`);
    expect(over.status).toBe(409);
    expect(over.body.error).toMatchObject({ code: 'WATCH_LIMIT_REACHED', details: { sku: c, limit: WATCH_LIMIT } });
    expect(over.body.error.message).toMatch(/at most 2 SKUs/);
    expect((await stack.admin('PUT', `/v1/metrics/watched-skus/${a}`)).status).toBe(200); // one already watched is no new series
    expect((await stack.admin('GET', '/v1/metrics/watched-skus')).body).toEqual({
      skus: [a, b].sort(),
      limit: WATCH_LIMIT,
    });

    const unknown = await stack.admin('PUT', `/v1/metrics/watched-skus/${uniqueSku('NOPE')}`);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'SKU_NOT_FOUND']);
    expect((await stack.admin('PUT', '/v1/metrics/watched-skus/bad%20sku')).status).toBe(400);
    expect((await stack.api('PUT', `/v1/metrics/watched-skus/${c}`)).status).toBe(403);

    for (const sku of [a, b]) await stack.admin('DELETE', `/v1/metrics/watched-skus/${sku}`);
  });

  it('two admins racing to watch the last free place: one wins, the other is refused; never more than the bound', async () => {
    const skus = await Promise.all(Array.from({ length: 6 }, () => newSku(1)));
    const answers = await Promise.all(skus.map((sku) => stack.admin('PUT', `/v1/metrics/watched-skus/${sku}`)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(WATCH_LIMIT);
    expect(answers.filter((a) => a.status === 409)).toHaveLength(skus.length - WATCH_LIMIT);
    expect((await stack.admin('GET', '/v1/metrics/watched-skus')).body.skus).toHaveLength(WATCH_LIMIT);
    for (const sku of skus) await stack.admin('DELETE', `/v1/metrics/watched-skus/${sku}`);
  });
});

describe('the outbox in /metrics', () => {
  it('stockhold_outbox_events_total follows the events written; stockhold_outbox_lag_seconds is the age of the oldest event a subscription waits for', async () => {
    const before = await scrape();
    expect(before.get('stockhold_outbox_lag_seconds')).toBe(0); // no subscription: nobody waits
    // A receiver nobody delivers to (this stack runs no webhook dispatcher): its deliveries wait.
    const hook = await stack.admin('POST', '/v1/webhooks', {
      body: { url: 'http://127.0.0.1:9/hook', events: ['stock.changed'] },
    });
    expect(hook.status).toBe(201);
    const sku = await newSku(5); // one stock.changed event
    const events = (s: Map<string, number>) => s.get('stockhold_outbox_events_total') ?? 0;
    // The event's age by PostgreSQL's clock just before and just after the scrape: the lag the
    // scrape reports lies between them (no stopwatch, however slow the machine).
    const age = async () =>
      (
        await stack.stock.db.query<{ age: number }>(
          'SELECT extract(epoch FROM now() - created_at)::float8 AS age FROM events WHERE skus @> ARRAY[$1::text]',
          [sku],
        )
      ).rows[0]!.age;
    const [older, waiting, newer] = [await age(), await scrape(), await age()];
    expect(events(waiting) - events(before)).toBe(1);
    const lag = waiting.get('stockhold_outbox_lag_seconds')!;
    expect({ lag, between: older <= lag && lag <= newer }).toEqual({ lag, between: true });
    // Unsubscribed: its deliveries stop, and nobody waits any more.
    expect((await stack.admin('DELETE', `/v1/webhooks/${hook.body.id as string}`)).status).toBe(204);
    expect((await scrape()).get('stockhold_outbox_lag_seconds')).toBe(0);
  });
});
