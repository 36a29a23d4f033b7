/**
 * Bundles (contract v3, "Bundles"), the definitions and their availability: over HTTP to the real
 * app with real PostgreSQL and Redis; every answer is checked against the OpenAPI document. A
 * bundle's stock is its components': `available` is the least of `floor(available / quantity)`,
 * read from Redis like any stock view (through `?channel=` too). Reservation lines of bundles are
 * not built yet (docs/API.md, Known differences): a hold or a stock write naming one is 400.
 */
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics/registry';
import type { ReservationService } from '../../src/api/reservations/service';
import { Reconciler } from '../../src/reconciler/reconciler';
import { createStock, keys } from '../../src/stock';
import { WebhookStore } from '../../src/webhooks/store';
import { TEST_DATABASE_URL, TEST_REDIS_URL, uniqueId, uniqueSku } from '../helpers/env';
import { expiresIn, newSku, refusal, storeChecks } from '../helpers/stock';
import '../helpers/conformance';

const ADMIN = 'bundles-admin-token';
const CLIENT = 'bundles-client-token';

const clients = createStock({ redisUrl: TEST_REDIS_URL, databaseUrl: TEST_DATABASE_URL });
const { stock, db, redis } = clients;
const app = createApp({
  config: { adminToken: ADMIN, apiToken: CLIENT, maxTtlSeconds: 86_400 },
  stock,
  webhooks: new WebhookStore(db),
  reservations: {} as ReservationService,
  metrics: createMetrics(),
  logger: pino({ level: 'silent' }),
  checks: storeChecks(clients),
});
afterAll(() => clients.close());

const as = (token: string) => ({
  get: (path: string) => request(app).get(path).set('Authorization', `Bearer ${token}`),
  put: (path: string, body: unknown) =>
    request(app)
      .put(path)
      .set('Authorization', `Bearer ${token}`)
      .send(body as object),
  post: (path: string, body: unknown) =>
    request(app)
      .post(path)
      .set('Authorization', `Bearer ${token}`)
      .send(body as object),
});
const admin = as(ADMIN);
const client = as(CLIENT);

/** What a refused bundle write could have changed: the bundle's rows. */
async function rowsOf(sku: string) {
  const [bundle, parts] = await Promise.all([
    db.query('SELECT sku, name FROM bundles WHERE sku = $1', [sku]),
    db.query('SELECT sku, quantity, position FROM bundle_components WHERE bundle = $1 ORDER BY position', [sku]),
  ]);
  return { bundle: bundle.rows, parts: parts.rows };
}

/** Three stocked SKUs: a camera body (5), a lens (7), a strap (20). */
async function kitParts() {
  const [body, lens, strap] = [uniqueSku('BODY'), uniqueSku('LENS'), uniqueSku('STRAP')];
  await newSku(clients, body!, 5);
  await newSku(clients, lens!, 7);
  await newSku(clients, strap!, 20);
  return { body: body!, lens: lens!, strap: strap! };
}

describe('a bundle', () => {
  it("is put with its components and read as the least of its components' floor(available / quantity)", async () => {
    const { body, lens, strap } = await kitParts();
    const kit = uniqueSku('KIT');
    const components = [
      { sku: body, quantity: 1 },
      { sku: lens, quantity: 2 },
      { sku: strap, quantity: 3 },
    ];
    const put = await admin.put(`/v1/bundles/${kit}`, { name: 'Camera kit', components }).expect(200);
    expect(put.body).toEqual({ sku: kit, name: 'Camera kit', components });
    // body 5/1 = 5, lens 7/2 = 3, strap 20/3 = 6: three kits.
    const view = await client.get(`/v1/skus/${kit}`).expect(200);
    expect(view.body).toEqual({
      sku: kit,
      name: 'Camera kit',
      bundle: true,
      available: 3,
      components: [
        { sku: body, quantity: 1, available: 5 },
        { sku: lens, quantity: 2, available: 7 },
        { sku: strap, quantity: 3, available: 20 },
      ],
    });
    // A hold of a component lowers it at once (the same Redis figures as the component's own view).
    await stock.hold({ reservationId: uniqueId(), items: [{ sku: lens, quantity: 4 }], expiresAt: expiresIn() });
    expect((await client.get(`/v1/skus/${kit}`).expect(200)).body).toMatchObject({
      available: 1,
      components: [{ available: 5 }, { available: 3 }, { available: 20 }],
    });
    // Among others in one availability read: in the order asked, the unknown one missing.
    const none = uniqueSku('NONE');
    const many = await client.get(`/v1/availability?skus=${kit},${body},${none}`).expect(200);
    expect(many.body.items.map((v: { sku: string; available: number }) => [v.sku, v.available])).toEqual([
      [kit, 1],
      [body, 5],
    ]);
    expect(many.body.missing).toEqual([none]);
    // Put again without a name: the components change, the name stays.
    const again = await admin.put(`/v1/bundles/${kit}`, { components: [{ sku: strap, quantity: 4 }] }).expect(200);
    expect(again.body).toEqual({ sku: kit, name: 'Camera kit', components: [{ sku: strap, quantity: 4 }] });
    expect((await client.get(`/v1/skus/${kit}`).expect(200)).body).toMatchObject({ available: 5 });
  });

  it("through ?channel= counts only the channel's locations of each component", async () => {
    const east = uniqueSku('BE');
    await admin.post('/v1/locations', { locationId: east, name: east }).expect(201);
    const shop = uniqueSku('bshop');
    await admin.put(`/v1/channels/${shop}`, { locations: [east], strategy: 'priority' }).expect(200);
    const [a, b] = [uniqueSku('BA'), uniqueSku('BB')];
    await admin.post('/v1/skus', { sku: a, locations: { default: 10, [east]: 4 } }).expect(201);
    await admin.post('/v1/skus', { sku: b, locations: { default: 10, [east]: 9 } }).expect(201);
    const duo = uniqueSku('DUO');
    await admin
      .put(`/v1/bundles/${duo}`, {
        components: [
          { sku: a, quantity: 2 },
          { sku: b, quantity: 3 },
        ],
      })
      .expect(200);
    expect((await client.get(`/v1/skus/${duo}`).expect(200)).body).toMatchObject({ name: '', available: 6 });
    expect((await client.get(`/v1/skus/${duo}?channel=${shop}`).expect(200)).body).toMatchObject({
      available: 2,
      components: [{ available: 4 }, { available: 9 }],
    });
  });

  it('is refused, changing nothing, when a component is unknown, is a bundle, or is named twice, and when its id is a stocked SKU', async () => {
    const { body, lens } = await kitParts();
    const kit = uniqueSku('KIT');
    const unknown = uniqueSku('NOPE');
    const missing = await admin
      .put(`/v1/bundles/${kit}`, {
        components: [
          { sku: body, quantity: 1 },
          { sku: unknown, quantity: 1 },
        ],
      })
      .expect(404);
    expect(missing.body.error).toMatchObject({ code: 'SKU_NOT_FOUND', details: { sku: unknown } });
    expect(await rowsOf(kit)).toEqual({ bundle: [], parts: [] });

    const inner = uniqueSku('INNER');
    await admin.put(`/v1/bundles/${inner}`, { components: [{ sku: lens, quantity: 1 }] }).expect(200);
    const nested = await admin.put(`/v1/bundles/${kit}`, { components: [{ sku: inner, quantity: 1 }] }).expect(400);
    expect(nested.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'components.0.sku' } });
    const itself = await admin.put(`/v1/bundles/${kit}`, { components: [{ sku: kit, quantity: 1 }] }).expect(400);
    expect(itself.body.error.code).toBe('INVALID_REQUEST');
    const twice = await admin
      .put(`/v1/bundles/${kit}`, {
        components: [
          { sku: body, quantity: 1 },
          { sku: body, quantity: 2 },
        ],
      })
      .expect(400);
    expect(twice.body.error.code).toBe('INVALID_REQUEST');
    for (const components of [[], Array.from({ length: 21 }, (_, i) => ({ sku: `P${i}`, quantity: 1 }))])
      await admin.put(`/v1/bundles/${kit}`, { components }).expect(400);
    await admin.put(`/v1/bundles/${kit}`, { components: [{ sku: body, quantity: 0 }] }).expect(400);
    expect(await rowsOf(kit)).toEqual({ bundle: [], parts: [] });

    const taken = await admin.put(`/v1/bundles/${body}`, { components: [{ sku: lens, quantity: 1 }] }).expect(409);
    expect(taken.body.error.code).toBe('SKU_EXISTS');
    expect(await rowsOf(body)).toEqual({ bundle: [], parts: [] });
    await client.put(`/v1/bundles/${kit}`, { components: [{ sku: body, quantity: 1 }] }).expect(403);
    expect(await rowsOf(kit)).toEqual({ bundle: [], parts: [] });
  });

  it("takes its id from the stocked SKUs: creating a SKU with a bundle's id is SKU_EXISTS, and racing the two leaves exactly one", async () => {
    const { body } = await kitParts();
    const kit = uniqueSku('KIT');
    await admin.put(`/v1/bundles/${kit}`, { components: [{ sku: body, quantity: 1 }] }).expect(200);
    const clash = await admin.post('/v1/skus', { sku: kit, total: 3 }).expect(409);
    expect(clash.body.error.code).toBe('SKU_EXISTS');
    expect((await db.query('SELECT 1 FROM skus WHERE sku = $1', [kit])).rowCount).toBe(0);
    // Both at once, twenty times: one of the two wins each id, never both.
    for (let i = 0; i < 20; i++) {
      const id = uniqueSku('RACE');
      const [asBundle, asSku] = await Promise.all([
        admin.put(`/v1/bundles/${id}`, { components: [{ sku: body, quantity: 1 }] }),
        admin.post('/v1/skus', { sku: id, total: 1 }),
      ]);
      expect([
        [200, 409],
        [409, 201],
      ]).toContainEqual([asBundle.status, asSku.status]);
      const [inBundles, inSkus] = await Promise.all([
        db.query('SELECT 1 FROM bundles WHERE sku = $1', [id]),
        db.query('SELECT 1 FROM skus WHERE sku = $1', [id]),
      ]);
      expect(inBundles.rowCount! + inSkus.rowCount!).toBe(1);
    }
  });

  it('has no stock of its own: a restock or a hold naming it is 400 (reservations of bundle lines are not built yet), an unknown id 404', async () => {
    const { body } = await kitParts();
    const kit = uniqueSku('KIT');
    await admin.put(`/v1/bundles/${kit}`, { components: [{ sku: body, quantity: 1 }] }).expect(200);
    const restock = await admin.post(`/v1/skus/${kit}/restock`, { quantity: 1 }).expect(400);
    expect(restock.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { sku: kit, bundle: true } });
    const held = await refusal(
      stock.hold({ reservationId: uniqueId(), items: [{ sku: kit, quantity: 1 }], expiresAt: expiresIn() }),
    );
    expect({ code: held.code, details: held.details }).toEqual({
      code: 'INVALID_REQUEST',
      details: { sku: kit, bundle: true },
    });
    expect((await client.get(`/v1/skus/${body}`).expect(200)).body).toMatchObject({ reserved: 0, available: 5 });
    await client.get(`/v1/skus/${uniqueSku('NONE')}`).expect(404);
  });
});

describe("Redis's copy of the bundles", () => {
  it('is written back by a read that misses it, and put right by the reconciler when it differs', async () => {
    const { body, lens } = await kitParts();
    const kit = uniqueSku('KIT');
    await admin.put(`/v1/bundles/${kit}`, { components: [{ sku: body, quantity: 1 }] }).expect(200);
    // Lost: a fresh store (no cache) reads PostgreSQL's and puts it back.
    await redis.hdel(keys.bundles, kit);
    const fresh = createStock({ redisUrl: TEST_REDIS_URL, databaseUrl: TEST_DATABASE_URL });
    try {
      expect(await fresh.stock.readSku(kit)).toMatchObject({ bundle: true, available: 5 });
      expect(JSON.parse((await redis.hget(keys.bundles, kit))!)).toEqual({
        name: '',
        components: [{ sku: body, quantity: 1 }],
      });
    } finally {
      await fresh.close();
    }
    // Stale: a write whose Redis step failed. The reconciler replaces it after the grace period.
    await db.query('UPDATE bundle_components SET sku = $2 WHERE bundle = $1', [kit, lens]);
    let now = 1_000;
    const repairs: unknown[] = [];
    const reconciler = new Reconciler(stock, {
      graceMs: 5_000,
      now: () => now,
      running: async (ids) => new Set(ids),
      report: (e) => {
        if (e.kind === 'bundles') repairs.push(e.detail);
      },
    });
    await reconciler.scan();
    expect(repairs).toEqual([]);
    now += 5_000;
    await reconciler.scan();
    expect(JSON.parse((await redis.hget(keys.bundles, kit))!)).toEqual({
      name: '',
      components: [{ sku: lens, quantity: 1 }],
    });
    expect(repairs).toEqual([{ bundles: expect.arrayContaining([kit]) }]);
  });
});
