/**
 * Locations and channels (contract v3), the registries: over HTTP to the real app with real
 * PostgreSQL and Redis; every answer is checked against the OpenAPI document. The channel
 * `default` is shared by the whole test database, so the test that replaces it puts the implicit
 * one back (deletes its row) when it ends.
 */
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics/registry';
import type { ReservationService } from '../../src/api/reservations/service';
import { createStock } from '../../src/stock';
import { WebhookStore } from '../../src/webhooks/store';
import { TEST_DATABASE_URL, TEST_REDIS_URL, uniqueSku } from '../helpers/env';
import { expiresIn, newSku, storeChecks } from '../helpers/stock';
import { keys } from '../../src/stock';
import '../helpers/conformance';

const ADMIN = 'locations-admin-token';
const CLIENT = 'locations-client-token';

const clients = createStock({ redisUrl: TEST_REDIS_URL, databaseUrl: TEST_DATABASE_URL });
const app = createApp({
  config: { adminToken: ADMIN, apiToken: CLIENT, maxTtlSeconds: 86_400 },
  stock: clients.stock,
  webhooks: new WebhookStore(clients.db),
  reservations: {} as ReservationService,
  metrics: createMetrics(),
  logger: pino({ level: 'silent' }),
  checks: storeChecks(clients),
});
afterAll(() => clients.close());

const admin = {
  get: (path: string) => request(app).get(path).set('Authorization', `Bearer ${ADMIN}`),
  post: (path: string, body: unknown) =>
    request(app)
      .post(path)
      .set('Authorization', `Bearer ${ADMIN}`)
      .send(body as object),
  put: (path: string, body: unknown) =>
    request(app)
      .put(path)
      .set('Authorization', `Bearer ${ADMIN}`)
      .send(body as object),
};
const client = { get: (path: string) => request(app).get(path).set('Authorization', `Bearer ${CLIENT}`) };

/** What a refused request could have changed: every location and channel row. */
async function registries() {
  const [locations, channels] = await Promise.all([
    clients.db.query('SELECT location_id, name FROM locations ORDER BY position'),
    clients.db.query('SELECT channel, locations, strategy FROM channels ORDER BY position'),
  ]);
  return { locations: locations.rows, channels: channels.rows };
}

describe('locations', () => {
  it('every deployment has `default`, first in the list', async () => {
    const res = await admin.get('/v1/locations').expect(200);
    expect(res.body.locations[0]).toEqual({
      locationId: 'default',
      name: expect.any(String),
      createdAt: expect.any(String),
    });
  });

  it('POST creates a location (201) that the list shows after the earlier ones, in creation order', async () => {
    const first = uniqueSku('WH');
    const second = uniqueSku('WH');
    const a = await admin.post('/v1/locations', { locationId: first, name: 'North warehouse' }).expect(201);
    expect(a.body).toEqual({ locationId: first, name: 'North warehouse', createdAt: expect.any(String) });
    expect(Date.parse(a.body.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    await admin.post('/v1/locations', { locationId: second, name: 'South store' }).expect(201);
    const ids = (await admin.get('/v1/locations').expect(200)).body.locations.map(
      (l: { locationId: string }) => l.locationId,
    );
    expect(ids.indexOf(first)).toBeGreaterThan(0);
    expect(ids.indexOf(second)).toBe(ids.indexOf(first) + 1);
  });

  it('an id taken already is 409 LOCATION_EXISTS naming it, and keeps the first name', async () => {
    const id = uniqueSku('WH');
    await admin.post('/v1/locations', { locationId: id, name: 'first' }).expect(201);
    const res = await admin.post('/v1/locations', { locationId: id, name: 'second' }).expect(409);
    expect(res.body.error).toMatchObject({ code: 'LOCATION_EXISTS', details: { locationId: id } });
    const row = await clients.db.query('SELECT name FROM locations WHERE location_id = $1', [id]);
    expect(row.rows).toEqual([{ name: 'first' }]);
    expect((await admin.post('/v1/locations', { locationId: 'default', name: 'x' }).expect(409)).body.error.code).toBe(
      'LOCATION_EXISTS',
    );
  });

  it.each([
    ['no body', undefined, '(body)'],
    ['no locationId', { name: 'n' }, 'locationId'],
    ['an id with a space', { locationId: 'a b', name: 'n' }, 'locationId'],
    ['an id of 65 characters', { locationId: 'x'.repeat(65), name: 'n' }, 'locationId'],
    ['a numeric id', { locationId: 7, name: 'n' }, 'locationId'],
    ['no name', { locationId: 'ok-id' }, 'name'],
    ['an empty name', { locationId: 'ok-id', name: '' }, 'name'],
    ['an unknown field', { locationId: 'ok-id', name: 'n', total: 3 }, 'total'],
  ])('%s is 400 INVALID_REQUEST naming the field, and changes nothing', async (_, body, field) => {
    const before = await registries();
    const res = await admin.post('/v1/locations', body).expect(400);
    expect({ code: res.body.error.code, field: res.body.error.details.field }).toEqual({
      code: 'INVALID_REQUEST',
      field,
    });
    expect(await registries()).toEqual(before);
  });

  it('the client token is 403 on both routes and creates nothing', async () => {
    const id = uniqueSku('WH');
    await request(app)
      .post('/v1/locations')
      .set('Authorization', `Bearer ${CLIENT}`)
      .send({ locationId: id, name: 'n' })
      .expect(403);
    await client.get('/v1/locations').expect(403);
    expect((await clients.db.query('SELECT 1 FROM locations WHERE location_id = $1', [id])).rowCount).toBe(0);
  });
});

describe('channels', () => {
  it('PUT creates a channel and replaces it; GET answers it to a client, the list to an admin', async () => {
    const north = uniqueSku('WH');
    const south = uniqueSku('WH');
    await admin.post('/v1/locations', { locationId: north, name: 'north' }).expect(201);
    await admin.post('/v1/locations', { locationId: south, name: 'south' }).expect(201);
    const name = uniqueSku('web');
    const put = await admin
      .put(`/v1/channels/${name}`, { locations: [south, north], strategy: 'priority' })
      .expect(200);
    expect(put.body).toEqual({ channel: name, locations: [south, north], strategy: 'priority' });
    expect((await client.get(`/v1/channels/${name}`).expect(200)).body).toEqual(put.body);

    const replaced = await admin
      .put(`/v1/channels/${name}`, { locations: [north], strategy: 'most-available' })
      .expect(200);
    expect(replaced.body).toEqual({ channel: name, locations: [north], strategy: 'most-available' });
    expect((await client.get(`/v1/channels/${name}`).expect(200)).body).toEqual(replaced.body);

    const list = (await admin.get('/v1/channels').expect(200)).body.channels as { channel: string }[];
    expect(list[0]!.channel).toBe('default');
    expect(list.filter((c) => c.channel === name)).toEqual([replaced.body]);
  });

  it('`default` is every location in creation order with `priority` until replaced; a new location joins it', async () => {
    const before = (await client.get('/v1/channels/default').expect(200)).body;
    const all = (await admin.get('/v1/locations').expect(200)).body.locations.map(
      (l: { locationId: string }) => l.locationId,
    );
    expect(before).toEqual({ channel: 'default', locations: all, strategy: 'priority' });
    const id = uniqueSku('WH');
    await admin.post('/v1/locations', { locationId: id, name: 'new' }).expect(201);
    expect((await client.get('/v1/channels/default').expect(200)).body.locations).toEqual([...all, id]);
  });

  it('replacing `default` pins it: a later location does not join it', async () => {
    const kept = uniqueSku('WH');
    await admin.post('/v1/locations', { locationId: kept, name: 'kept' }).expect(201);
    try {
      const put = await admin.put('/v1/channels/default', { locations: [kept, 'default'], strategy: 'most-available' });
      expect(put.status).toBe(200);
      await admin.post('/v1/locations', { locationId: uniqueSku('WH'), name: 'later' }).expect(201);
      expect((await client.get('/v1/channels/default').expect(200)).body).toEqual({
        channel: 'default',
        locations: [kept, 'default'],
        strategy: 'most-available',
      });
      const list = (await admin.get('/v1/channels').expect(200)).body.channels;
      expect(list[0]).toEqual(put.body);
      expect(list.filter((c: { channel: string }) => c.channel === 'default')).toHaveLength(1);
    } finally {
      // The implicit `default` back, in PostgreSQL and in Redis's copy (other suites' reconcilers compare them).
      await clients.db.query("DELETE FROM channels WHERE channel = 'default'");
      await clients.stock.counters.putChannels([await clients.stock.ledger.locations.channel('default')]);
    }
  });

  it('an unknown location is 404 LOCATION_NOT_FOUND naming the first missing one, and changes nothing', async () => {
    const name = uniqueSku('web');
    await admin.put(`/v1/channels/${name}`, { locations: ['default'], strategy: 'priority' }).expect(200);
    const before = await registries();
    const missing = uniqueSku('NOWHERE');
    const res = await admin
      .put(`/v1/channels/${name}`, { locations: ['default', missing, uniqueSku('ALSO')], strategy: 'priority' })
      .expect(404);
    expect(res.body.error).toMatchObject({ code: 'LOCATION_NOT_FOUND', details: { locationId: missing } });
    expect(await registries()).toEqual(before);
  });

  it('an unknown channel is 404 CHANNEL_NOT_FOUND', async () => {
    const name = uniqueSku('none');
    const res = await client.get(`/v1/channels/${name}`).expect(404);
    expect(res.body.error).toMatchObject({ code: 'CHANNEL_NOT_FOUND', details: { channel: name } });
  });

  it.each([
    ['no locations', { strategy: 'priority' }, 'locations'],
    ['an empty list', { locations: [], strategy: 'priority' }, 'locations'],
    ['51 locations', { locations: Array.from({ length: 51 }, (_, i) => `L${i}`), strategy: 'priority' }, 'locations'],
    ['a location twice', { locations: ['default', 'default'], strategy: 'priority' }, 'locations'],
    ['a bad location id', { locations: ['a b'], strategy: 'priority' }, 'locations.0'],
    ['no strategy', { locations: ['default'] }, 'strategy'],
    ['an unknown strategy', { locations: ['default'], strategy: 'nearest' }, 'strategy'],
    ['an unknown field', { locations: ['default'], strategy: 'priority', name: 'x' }, 'name'],
  ])('%s is 400 INVALID_REQUEST naming the field, and changes nothing', async (_, body, field) => {
    const before = await registries();
    const res = await admin.put(`/v1/channels/${uniqueSku('web')}`, body).expect(400);
    expect({ code: res.body.error.code, field: res.body.error.details.field }).toEqual({
      code: 'INVALID_REQUEST',
      field,
    });
    expect(await registries()).toEqual(before);
  });

  it('a bad channel name is 400 naming `channel`; the client token may read a channel but not put or list them', async () => {
    expect((await client.get('/v1/channels/a%20b').expect(400)).body.error.details.field).toBe('channel');
    expect(
      (await admin.put('/v1/channels/a%20b', { locations: ['default'], strategy: 'priority' }).expect(400)).body.error
        .details.field,
    ).toBe('channel');
    const name = uniqueSku('web');
    await request(app)
      .put(`/v1/channels/${name}`)
      .set('Authorization', `Bearer ${CLIENT}`)
      .send({ locations: ['default'], strategy: 'priority' })
      .expect(403);
    await client.get('/v1/channels').expect(403);
    await client.get(`/v1/channels/${name}`).expect(404);
  });
});

describe('reads through a channel (?channel=)', () => {
  /** A channel of these locations (created when new), named uniquely. */
  async function channelOf(locations: string[], strategy = 'priority') {
    for (const id of locations.filter((l) => l !== 'default'))
      await admin.post('/v1/locations', { locationId: id, name: id });
    const name = uniqueSku('ch');
    await admin.put(`/v1/channels/${name}`, { locations, strategy }).expect(200);
    return name;
  }

  it("a channel with `default` counts a SKU's stock there and lists the level; without ?channel= the view is v2's", async () => {
    const sku = uniqueSku('CR');
    await newSku(clients, sku, 9, 'read me');
    await clients.stock.hold({ reservationId: uniqueSku('r'), items: [{ sku, quantity: 4 }], expiresAt: expiresIn() });
    const web = await channelOf([uniqueSku('WH'), 'default']);
    const plain = (await client.get(`/v1/skus/${sku}`).expect(200)).body;
    expect(plain).not.toHaveProperty('locations');
    const through = (await client.get(`/v1/skus/${sku}?channel=${web}`).expect(200)).body;
    expect(through).toEqual({
      ...plain,
      locations: [{ locationId: 'default', total: 9, reserved: 4, available: 5 }],
    });
    const many = (await client.get(`/v1/availability?skus=${sku},${uniqueSku('NONE')}&channel=${web}`).expect(200))
      .body;
    expect(many.items).toEqual([through]);
    expect(many.missing).toHaveLength(1);
  });

  it('a channel without the locations a SKU is stocked at shows none of it: 0 available, no levels', async () => {
    const sku = uniqueSku('CR');
    await newSku(clients, sku, 9);
    const elsewhere = await channelOf([uniqueSku('WH')]);
    expect((await client.get(`/v1/skus/${sku}?channel=${elsewhere}`).expect(200)).body).toMatchObject({
      sku,
      total: 0,
      reserved: 0,
      available: 0,
      locations: [],
    });
  });

  it("sums a SKU's levels at the channel's locations only, listed by id, each available never below 0", async () => {
    // A SKU's hash as the counts per location will keep it (keys.ts: locs, t:<loc>, r:<loc>).
    // Redis alone (no PostgreSQL row, so no reconciler of another suite looks at it), removed after.
    const sku = uniqueSku('CR');
    const [north, south, east] = [uniqueSku('N'), uniqueSku('S'), uniqueSku('E')];
    await clients.redis.hset(keys.stock(sku), {
      total: 17,
      reserved: 9,
      locs: `default,${north},${south},${east}`,
      't:default': 0,
      'r:default': 0,
      [`t:${north}`]: 5,
      [`r:${north}`]: 2,
      [`t:${south}`]: 4,
      [`r:${south}`]: 6,
      [`t:${east}`]: 8,
      [`r:${east}`]: 1,
    });
    try {
      const channel = await channelOf([south, north, uniqueSku('W')]);
      expect((await client.get(`/v1/skus/${sku}?channel=${channel}`).expect(200)).body).toMatchObject({
        total: 9,
        reserved: 8,
        available: 3,
        locations: [
          { locationId: north, total: 5, reserved: 2, available: 3 },
          { locationId: south, total: 4, reserved: 6, available: 0 },
        ].sort((a, b) => (a.locationId < b.locationId ? -1 : 1)),
      });
    } finally {
      await clients.redis.del(keys.stock(sku));
    }
  });

  it('an unknown channel is 404 CHANNEL_NOT_FOUND, a bad name 400 naming `channel`, on both reads', async () => {
    const sku = uniqueSku('CR');
    await newSku(clients, sku, 1);
    const none = uniqueSku('none');
    expect((await client.get(`/v1/skus/${sku}?channel=${none}`).expect(404)).body.error).toMatchObject({
      code: 'CHANNEL_NOT_FOUND',
      details: { channel: none },
    });
    expect((await client.get(`/v1/availability?skus=${sku}&channel=${none}`).expect(404)).body.error.code).toBe(
      'CHANNEL_NOT_FOUND',
    );
    expect((await client.get(`/v1/skus/${sku}?channel=a%20b`).expect(400)).body.error.details.field).toBe('channel');
    expect((await client.get(`/v1/skus/${sku}?channel=a&channel=b`).expect(400)).body.error.details.field).toBe(
      'channel',
    );
  });

  it("reads the channel from Redis's copy, written with each PUT; a copy Redis lost is put back by the next read", async () => {
    const name = await channelOf(['default'], 'most-available');
    expect(JSON.parse((await clients.redis.hget(keys.channels, name))!)).toEqual({
      locations: ['default'],
      strategy: 'most-available',
    });
    await clients.redis.hdel(keys.channels, name);
    const sku = uniqueSku('CR');
    await newSku(clients, sku, 2);
    expect((await client.get(`/v1/skus/${sku}?channel=${name}`).expect(200)).body.available).toBe(2);
    expect(JSON.parse((await clients.redis.hget(keys.channels, name))!)).toEqual({
      locations: ['default'],
      strategy: 'most-available',
    });
  });
});
