import { createServer } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics/registry';
import { ReservationService } from '../../src/api/reservations/service';
import { keys } from '../../src/stock';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expiresIn, figures, storeChecks, testStock } from '../helpers/stock';
// Every answer below is checked against the OpenAPI document (GET /openapi.json).
import '../helpers/conformance';
import { WebhookStore } from '../../src/webhooks/store';

/**
 * Bad input is refused at the API's edge: 400 INVALID_REQUEST in the contract's error shape,
 * naming the bad field in `details.field`, and it changes nothing: the SKUs' figures in Redis and
 * PostgreSQL, their holds, their reservations and their ledger are the same before and after.
 *
 * The stock module trusts typed input; src/api validates bodies, path params, query strings and the
 * Idempotency-Key header (rules in src/domain/schemas.ts). So these requests go over HTTP to the
 * real app, with the real StockStore and a real ReservationService whose Temporal client points at
 * nothing: a bad request that got past validation would reach Temporal and be answered 503, not 400.
 *
 * Each store call of the old stock-level test maps to its route:
 *   createSku → POST /v1/skus                       getStock        → GET /v1/skus/:sku
 *   restock   → POST /v1/skus/:sku/restock          getHolds        → GET /v1/skus/:sku/holds
 *   adjust    → POST /v1/skus/:sku/adjustments      getMovements    → GET /v1/skus/:sku/movements?limit=
 *   recordReturn → POST /v1/returns                 getAvailability → GET /v1/availability?skus=
 *   hold    → POST /v1/reservations {reservationId?, items, ttlSeconds?, customerId?}
 *   commit  → POST /v1/reservations/:id/commit {paymentId?, items?}
 *   release → POST /v1/reservations/:id/cancel {reason?}   extend → POST /v1/reservations/:id/extend {ttlSeconds}
 *
 * What JSON and HTTP cannot carry changes some cases (each place says so):
 * - NaN is not JSON: JSON.stringify sends null, which is a case of its own, so NaN is not repeated.
 *   Infinity and -Infinity are sent as 1e400 and -1e400, which JSON.parse reads as ±Infinity.
 *   An undefined field is left out of the body, so it is the case of a missing field.
 * - A path segment, a query value or a header is always text: 42, null or ['A'] arrive as the
 *   valid '42', 'null', 'A', so those cases are dropped there (they stay in the JSON bodies).
 */

const ADMIN = 'bad-input-admin-token';
const CLIENT = 'bad-input-client-token';
const MAX_TTL_SECONDS = 86_400;

const clients = testStock();
const { stock } = clients;
// No retries: a request that reaches this Temporal fails at once (UNAVAILABLE), not after ~20 s of backoff.
const connection = Connection.lazy({ address: '127.0.0.1:1', interceptors: [] });
const reservations = new ReservationService(new Client({ connection }), stock, {
  taskQueue: 'bad-input',
  defaultTtlSeconds: 600,
  maxTtlSeconds: MAX_TTL_SECONDS,
});
const app = createApp({
  config: { adminToken: ADMIN, apiToken: CLIENT, maxTtlSeconds: MAX_TTL_SECONDS },
  stock,
  webhooks: new WebhookStore(clients.db),
  reservations,
  metrics: createMetrics(),
  logger: pino({ level: 'silent' }),
  checks: storeChecks(clients),
});
const server = createServer(app);

beforeAll(() => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)));

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await connection.close();
  await clients.close();
});

// ------------------------------------------------------------------ requests

/** A body sent as these exact bytes (not JSON-encoded), with its Content-Type. */
class Raw {
  constructor(
    readonly text: string,
    readonly type = 'application/json',
  ) {}
}

const INFINITY = '\u0000+Infinity';
const MINUS_INFINITY = '\u0000-Infinity';

/** JSON as a client sends it, except ±Infinity, sent as ±1e400 (which JSON.parse reads back as ±Infinity). */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v === Infinity ? INFINITY : v === -Infinity ? MINUS_INFINITY : v))
    .replaceAll(JSON.stringify(INFINITY), '1e400')
    .replaceAll(JSON.stringify(MINUS_INFINITY), '-1e400');
}

/** One request with the role's token; `body` is JSON-encoded (toJson) unless Raw, and not sent if undefined. */
function send(
  method: 'get' | 'post',
  path: string,
  role: 'admin' | 'client',
  body?: unknown,
  headers: Record<string, string> = {},
): request.Test {
  const req = request(server)
    [method](path)
    .set('Authorization', `Bearer ${role === 'admin' ? ADMIN : CLIENT}`);
  for (const [name, value] of Object.entries(headers)) req.set(name, value);
  if (body instanceof Raw) req.set('Content-Type', body.type).send(body.text);
  else if (body !== undefined) req.set('Content-Type', 'application/json').send(toJson(body));
  return req;
}

/** A path segment as a client writes it, so that any text reaches the route. */
const seg = (value: string) => encodeURIComponent(value);

/** The Idempotency-Key header; its value goes on the wire as UTF-8 bytes (Node's client sends a string's chars as latin1). */
const withKey = (key: string) => ({ 'Idempotency-Key': Buffer.from(key, 'utf8').toString('latin1') });

/** The routes, named after the store calls they replace. */
const api = {
  createSku: (body: unknown, headers?: Record<string, string>) => send('post', '/v1/skus', 'admin', body, headers),
  restock: (sku: string, body: unknown, headers?: Record<string, string>) =>
    send('post', `/v1/skus/${seg(sku)}/restock`, 'admin', body, headers),
  adjust: (sku: string, body: unknown, headers?: Record<string, string>) =>
    send('post', `/v1/skus/${seg(sku)}/adjustments`, 'admin', body, headers),
  recordReturn: (body: unknown, headers?: Record<string, string>) =>
    send('post', '/v1/returns', 'admin', body, headers),
  getStock: (sku: string) => send('get', `/v1/skus/${seg(sku)}`, 'client'),
  getHolds: (sku: string) => send('get', `/v1/skus/${seg(sku)}/holds`, 'admin'),
  /** `query` as it goes on the wire, e.g. `limit=5`. */
  getMovements: (sku: string, query?: string) =>
    send('get', `/v1/skus/${seg(sku)}/movements${query === undefined ? '' : `?${query}`}`, 'admin'),
  /** `query` as it goes on the wire, e.g. `skus=A,B`. */
  getAvailability: (query: string) => send('get', `/v1/availability?${query}`, 'client'),
  hold: (body: unknown) => send('post', '/v1/reservations', 'client', body),
  commit: (id: string, body?: unknown) => send('post', `/v1/reservations/${seg(id)}/commit`, 'client', body),
  cancel: (id: string, body?: unknown) => send('post', `/v1/reservations/${seg(id)}/cancel`, 'client', body),
  extend: (id: string, body?: unknown) => send('post', `/v1/reservations/${seg(id)}/extend`, 'client', body),
};

// ------------------------------------------------------------------ case tables

/** How a value reads in a test name: Infinity, control characters and long strings legibly; undefined as missing. */
function show(value: unknown): string {
  if (typeof value === 'string' && value.length > 60) return `'${value[0]}' x ${value.length}`;
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value === undefined) return '(missing)';
  return JSON.stringify(value);
}

const cases = (values: unknown[]) => values.map((v) => [show(v), v] as const);

/** The cases whose value can be a path segment, a query value or a header: non-empty text. */
const asText = (table: ReturnType<typeof cases>) =>
  table.filter((c): c is readonly [string, string] => typeof c[1] === 'string' && c[1] !== '');

// ------------------------------------------------------------------ the stock every test starts from

let A: string;
let B: string;
/** A live reservation: A x3, B x2. A bad call must never release or sell it. */
let held: { reservationId: string; items: { sku: string; quantity: number }[]; expiresAt: string };
/** A committed reservation of A x2, so returns have something to return. */
let sold: string;

// Made through the store: the reservation routes need Temporal, which this test does not run.
beforeAll(async () => {
  A = uniqueSku('BAD');
  B = uniqueSku('BAD');
  await stock.createSku({ sku: A, total: 20, name: 'bad-input A' });
  await stock.createSku({ sku: B, total: 20, name: 'bad-input B' });
  held = {
    reservationId: uniqueId('held'),
    items: [
      { sku: A, quantity: 3 },
      { sku: B, quantity: 2 },
    ],
    expiresAt: expiresIn(),
  };
  await stock.hold(held);
  sold = uniqueId('sold');
  await stock.hold({ reservationId: sold, items: [{ sku: A, quantity: 2 }], expiresAt: expiresIn() });
  await stock.commit(sold);
});

/** A SKU and a reservation of their own, for a test whose refusal might otherwise touch the shared ones. */
async function ownReservation(): Promise<{ sku: string; reservationId: string }> {
  const sku = uniqueSku('BAD');
  await stock.createSku({ sku, total: 5 });
  const reservationId = uniqueId('bad');
  await stock.hold({ reservationId, items: [{ sku, quantity: 2 }], expiresAt: expiresIn() });
  return { sku, reservationId };
}

/** Everything a refused call could have touched for these SKUs (A and B unless told), in both stores. */
async function snapshot(skus: string[] = [A, B]) {
  const out: Record<string, unknown> = {};
  for (const sku of skus) {
    const pg = await clients.db.query(
      `SELECT (SELECT count(*) FROM stock_movements WHERE sku = $1) AS movements,
              (SELECT json_agg(json_build_array(r.id, r.status, r.expires_at, r.reason, l.quantity, l.committed_quantity, l.returned_quantity)
                      ORDER BY r.id)
                 FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id WHERE l.sku = $1) AS reservations`,
      [sku],
    );
    out[sku] = {
      figures: await figures(clients, sku),
      holds: await clients.redis.hgetall(keys.holds(sku)),
      done: await clients.redis.zrange(keys.done(sku), 0, -1),
      ...pg.rows[0],
    };
  }
  return out;
}

/**
 * The request is answered 400 INVALID_REQUEST in the contract's error shape naming `field`, and the
 * SKUs (A and B unless told) are exactly as before.
 */
async function expectRefused(call: () => request.Test, field: string, skus?: string[]): Promise<void> {
  const before = await snapshot(skus);
  const res = await call();
  expect({ status: res.status, body: res.body as unknown }).toEqual({
    status: 400,
    body: {
      error: { code: 'INVALID_REQUEST', message: expect.any(String), details: expect.objectContaining({ field }) },
    },
  });
  expect(await snapshot(skus)).toEqual(before);
}

/** A SKU name that a refused call must not have created in either store. */
async function expectNoSku(sku: unknown): Promise<void> {
  if (typeof sku !== 'string') return;
  expect(await clients.redis.exists(keys.stock(sku))).toBe(0);
  // PostgreSQL text cannot hold NUL, so no such row can exist (and the query itself would fail).
  if (sku.includes('\u0000')) return;
  const rows = await clients.db.query('SELECT 1 FROM skus WHERE sku = $1', [sku]);
  expect(rows.rowCount).toBe(0);
}

// ------------------------------------------------------------------ the premise

describe('a valid request gets past validation to Temporal, which is not there', () => {
  // What every bad request below would get if the API let it through: 503, not 400.
  it.each([
    ['a hold', () => api.hold({ reservationId: uniqueId('ok'), items: [{ sku: A, quantity: 1 }] })],
    ['a commit', () => api.commit(held.reservationId)],
    ['a cancel', () => api.cancel(held.reservationId)],
    ['an extension', () => api.extend(held.reservationId, { ttlSeconds: 60 })],
  ] as const)('%s is answered 503 UNAVAILABLE and changes nothing', async (_, call) => {
    const before = await snapshot();
    const res = await call();
    expect({ status: res.status, code: (res.body as { error?: { code?: string } }).error?.code }).toEqual({
      status: 503,
      code: 'UNAVAILABLE',
    });
    expect(await snapshot()).toEqual(before);
  });
});

// ------------------------------------------------------------------ quantities

// NaN is not JSON (JSON.stringify sends null, a case here); Infinity goes as 1e400; undefined as a missing field.
const badLineQuantities = cases([
  0,
  -1,
  1.5,
  Infinity,
  -Infinity,
  '1',
  10_001,
  2 ** 31,
  null,
  undefined,
  true,
  [1],
  {},
]);

describe('bad line quantities are refused and change nothing', () => {
  it.each(badLineQuantities)('hold of quantity %s', async (_, q) => {
    await expectRefused(
      () => api.hold({ reservationId: uniqueId('bad'), items: [{ sku: A, quantity: q }] }),
      'items.0.quantity',
    );
  });

  it.each(badLineQuantities)('hold whose second line has quantity %s holds neither line', async (_, q) => {
    const items = [
      { sku: A, quantity: 1 },
      { sku: B, quantity: q },
    ];
    await expectRefused(() => api.hold({ reservationId: uniqueId('bad'), items }), 'items.1.quantity');
  });

  it.each(badLineQuantities)('commit of quantity %s leaves the reservation held', async (_, q) => {
    await expectRefused(() => api.commit(held.reservationId, { items: [{ sku: A, quantity: q }] }), 'items.0.quantity');
  });

  it.each(badLineQuantities)('return of quantity %s', async (_, q) => {
    await expectRefused(
      () => api.recordReturn({ reservationId: sold, items: [{ sku: A, quantity: q }] }),
      'items.0.quantity',
    );
  });
});

describe('bad stock figures are refused and change nothing', () => {
  // NaN dropped from each table: JSON.stringify sends it as null, which each table has.
  const badTotals = cases([-1, 1.5, Infinity, -Infinity, '5', 2 ** 31, 2 ** 53, null, undefined, false]);

  it.each(badTotals)('a new SKU with total %s is not created', async (_, total) => {
    const sku = uniqueSku('BAD');
    await expectRefused(() => api.createSku({ sku, total, name: 'never' }), 'total');
    await expectNoSku(sku);
  });

  it.each(cases([0, -1, 1.5, Infinity, '5', 2 ** 31, null, undefined]))('a restock of %s', async (_, quantity) => {
    await expectRefused(() => api.restock(A, { quantity, reason: 'truck' }), 'quantity');
  });

  it.each(cases([0, 1.5, -0.5, Infinity, -Infinity, '5', '-1', 2 ** 31, -(2 ** 31), null, undefined]))(
    'an adjustment by %s',
    async (_, delta) => {
      await expectRefused(() => api.adjust(A, { delta, reason: 'count' }), 'delta');
    },
  );

  it('an adjustment that would take total past 2^31-1 is refused naming delta', async () => {
    await expectRefused(() => api.adjust(A, { delta: 2 ** 31 - 1, reason: 'count' }), 'delta');
  });

  it('a restock that would take total past 2^31-1 is refused naming quantity', async () => {
    await expectRefused(() => api.restock(A, { quantity: 2 ** 31 - 1, reason: 'truck' }), 'quantity');
  });
});

// ------------------------------------------------------------------ SKUs

const badSkus = cases([
  '',
  ' ',
  'a b',
  ' A',
  'A ',
  'A'.repeat(65),
  '-lead',
  '.lead',
  ':lead',
  'x/y',
  'x\\y',
  'A{B}',
  'A*',
  'ÄPFEL',
  'é',
  'e\u0301',
  '商品',
  'A\u200bB',
  "A'; DROP TABLE skus;--",
  'A\nB',
  'ABC\n',
  'A\u0000B',
  42,
  null,
  undefined,
  ['A'],
]);
/**
 * SKUs in a path: the text ones, URL-encoded. An empty segment matches no route (404), and 42, null
 * and ['A'] can only be sent as the valid SKUs '42', 'null', 'A', so those cases are not sent there.
 */
const badPathSkus = asText(badSkus);
/** SKUs in the availability query: the text ones (an empty one is `skus=A,`, so it stays). */
const badQuerySkus = badSkus.filter((c): c is readonly [string, string] => typeof c[1] === 'string');

describe('malformed SKUs are refused and change nothing', () => {
  it.each(badSkus)('creating SKU %s', async (_, sku) => {
    await expectRefused(() => api.createSku({ sku, total: 1 }), 'sku');
    await expectNoSku(sku);
  });

  it.each(badPathSkus)('restocking SKU %s', async (_, sku) => {
    await expectRefused(() => api.restock(sku, { quantity: 1 }), 'sku');
  });

  it.each(badPathSkus)('adjusting SKU %s', async (_, sku) => {
    await expectRefused(() => api.adjust(sku, { delta: 1, reason: 'count' }), 'sku');
  });

  it.each(badPathSkus)('reading SKU %s (stock, holds, movements)', async (_, sku) => {
    await expectRefused(() => api.getStock(sku), 'sku');
    await expectRefused(() => api.getHolds(sku), 'sku');
    await expectRefused(() => api.getMovements(sku), 'sku');
  });

  it.each(badQuerySkus)('availability of [A, %s]', async (_, sku) => {
    await expectRefused(() => api.getAvailability(`skus=${seg(A)},${seg(sku)}`), 'skus.1');
  });

  it.each(badSkus)('a hold whose second line is SKU %s', async (_, sku) => {
    const items = [
      { sku: A, quantity: 1 },
      { sku, quantity: 1 },
    ];
    await expectRefused(() => api.hold({ reservationId: uniqueId('bad'), items }), 'items.1.sku');
  });

  it.each(badSkus)('a commit naming SKU %s leaves the reservation held', async (_, sku) => {
    await expectRefused(() => api.commit(held.reservationId, { items: [{ sku, quantity: 1 }] }), 'items.0.sku');
  });

  it.each(badSkus)('a return naming SKU %s', async (_, sku) => {
    await expectRefused(() => api.recordReturn({ reservationId: sold, items: [{ sku, quantity: 1 }] }), 'items.0.sku');
  });

  // The old "a release naming SKU %s" cases are gone: a cancel names no SKUs (the workflow knows
  // its lines). Its nearest HTTP equivalent, a cancel body that names SKUs, is an unknown field below.
});

// ------------------------------------------------------------------ unknown fields, carts

describe('unknown fields are refused, naming the unknown field, and change nothing', () => {
  const line = () => ({ sku: A, quantity: 1 });
  it.each([
    ['a new SKU', () => api.createSku({ sku: uniqueSku('BAD'), total: 1, extra: 1 }), 'extra'],
    ['a restock', () => api.restock(A, { quantity: 1, reason: 'truck', extra: 1 }), 'extra'],
    ['an adjustment', () => api.adjust(A, { delta: 1, reason: 'count', reserved: 0 }), 'reserved'],
    ['a return', () => api.recordReturn({ reservationId: sold, items: [line()], refund: true }), 'refund'],
    [
      'a return line',
      () => api.recordReturn({ reservationId: sold, items: [{ ...line(), price: 1 }] }),
      'items.0.price',
    ],
    ['a hold', () => api.hold({ reservationId: uniqueId('bad'), items: [line()], ttl: 5 }), 'ttl'],
    [
      'a hold line',
      () => api.hold({ reservationId: uniqueId('bad'), items: [{ ...line(), price: 1 }] }),
      'items.0.price',
    ],
    [
      'a commit line',
      () => api.commit(held.reservationId, { items: [{ ...line(), constructor: 1 }] }),
      'items.0.constructor',
    ],
    // The store's parameters that the API does not take, sent as fields anyway:
    [
      'a hold (expiresAt: the API takes ttlSeconds)',
      () => api.hold({ reservationId: uniqueId('bad'), items: [line()], expiresAt: expiresIn() }),
      'expiresAt',
    ],
    ['a cancel (skus: the API takes none)', () => api.cancel(held.reservationId, { skus: [A, B] }), 'skus'],
    [
      'an extension (expiresAt: the API takes ttlSeconds)',
      () => api.extend(held.reservationId, { ttlSeconds: 60, expiresAt: expiresIn() }),
      'expiresAt',
    ],
  ] as const)('%s with an unknown field', async (_, call, field) => {
    await expectRefused(call, field);
  });
});

describe('malformed carts are refused and change nothing', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ sku: `${A}-${i}`, quantity: 1 }));
  const duplicate = () => [
    { sku: A, quantity: 1 },
    { sku: A, quantity: 1 },
  ];

  it.each([
    ['a hold', (items: unknown) => api.hold({ reservationId: uniqueId('bad'), items })],
    ['a commit', (items: unknown) => api.commit(held.reservationId, { items })],
    ['a return', (items: unknown) => api.recordReturn({ reservationId: sold, items })],
  ] as const)('%s with a SKU twice, 51 lines, no lines or no array', async (_, call) => {
    await expectRefused(() => call(duplicate()), 'items.1.sku');
    await expectRefused(() => call(many(51)), 'items');
    await expectRefused(() => call([]), 'items');
    await expectRefused(() => call({ sku: A, quantity: 1 }), 'items');
    await expectRefused(() => call(null), 'items');
  });

  it('a hold of 50 lines is not refused as input (the SKUs are unknown)', async () => {
    const res = await api.hold({ reservationId: uniqueId('bad'), items: many(50) });
    expect({ status: res.status, code: (res.body as { error?: { code?: string } }).error?.code }).toEqual({
      status: 404,
      code: 'SKU_NOT_FOUND',
    });
  });

  // The old "release naming 51 SKUs, no SKU or not a list" case is gone: a cancel names no SKUs.

  it('availability of 101 SKUs, of none, or without the skus parameter', async () => {
    await expectRefused(
      () =>
        api.getAvailability(
          `skus=${many(101)
            .map((l) => seg(l.sku))
            .join(',')}`,
        ),
      'skus',
    );
    await expectRefused(() => api.getAvailability('skus='), 'skus');
    // The old "a SKU that is not a list" (getAvailability(A)): `skus=A` is a list of one, so the
    // nearest HTTP equivalent is no list at all.
    await expectRefused(() => api.getAvailability('other=1'), 'skus');
  });
});

// ------------------------------------------------------------------ reservation ids

const badReservationIds = cases([
  '',
  ' ',
  'a b',
  'r'.repeat(65),
  'r/1',
  'r.1',
  'r:1',
  'r{1}',
  "r'; DROP TABLE reservations;--",
  'rés',
  'r\n',
  'r\u0000',
  42,
  null,
  undefined,
]);
/** Ids in a path: the text ones (see badPathSkus for why '', 42, null and undefined are not sent). */
const badPathIds = asText(badReservationIds);

describe('malformed reservation ids are refused and change nothing', () => {
  // Without a reservationId the API makes one up, so a missing id is not a bad hold.
  it.each(badReservationIds.filter(([, id]) => id !== undefined))('a hold with id %s', async (_, id) => {
    await expectRefused(() => api.hold({ reservationId: id, items: [{ sku: A, quantity: 1 }] }), 'reservationId');
  });

  it.each(badPathIds)('a release of id %s', async (_, id) => {
    await expectRefused(() => api.cancel(id), 'reservationId');
  });

  it.each(badPathIds)('a commit of id %s', async (_, id) => {
    await expectRefused(() => api.commit(id), 'reservationId');
    await expectRefused(() => api.commit(id, { items: [{ sku: A, quantity: 1 }] }), 'reservationId');
  });

  it.each(badPathIds)('an extension of id %s', async (_, id) => {
    await expectRefused(() => api.extend(id, { ttlSeconds: 60 }), 'reservationId');
  });

  it.each(badReservationIds)('a return for id %s', async (_, id) => {
    await expectRefused(
      () => api.recordReturn({ reservationId: id, items: [{ sku: A, quantity: 1 }] }),
      'reservationId',
    );
  });
});

// ------------------------------------------------------------------ idempotency keys

describe('bad idempotency keys are refused and change nothing', () => {
  /**
   * Keys as they can travel in a header (non-ASCII ones as their UTF-8 bytes). Not sent: 'a\nb',
   * 'a\rb', 'a\u0000b', 'a\u001bb', 'a\u007fb' (Node's client will not send such a header, and
   * Node's server answers a bare 400 before the app sees the request), and 42, null, {} (a header is
   * text: '42' and 'null' are valid keys).
   */
  const badKeys = cases(['', 'k'.repeat(129), 'a\tb', 'clé', 'ключ']) as (readonly [string, string])[];

  it.each(badKeys)('a new SKU under key %s is not created', async (_, key) => {
    const sku = uniqueSku('BAD');
    await expectRefused(() => api.createSku({ sku, total: 1 }, withKey(key)), 'Idempotency-Key');
    await expectNoSku(sku);
  });

  it.each(badKeys)('a restock under key %s', async (_, key) => {
    await expectRefused(() => api.restock(A, { quantity: 1 }, withKey(key)), 'Idempotency-Key');
  });

  it.each(badKeys)('an adjustment under key %s', async (_, key) => {
    await expectRefused(() => api.adjust(A, { delta: -1, reason: 'count' }, withKey(key)), 'Idempotency-Key');
  });

  it.each(badKeys)('a return under key %s', async (_, key) => {
    await expectRefused(
      () => api.recordReturn({ reservationId: sold, items: [{ sku: A, quantity: 1 }] }, withKey(key)),
      'Idempotency-Key',
    );
  });
});

// ------------------------------------------------------------------ other fields

describe('other bad fields are refused and change nothing', () => {
  // The limit as it goes in the query. The old '10' (a string, not a number) has no HTTP form, a
  // query value is always text: its nearest is a number not written as digits ('1e1'); null is `limit=`.
  it.each(cases(['0', '501', '-1', '1.5', 'NaN', 'Infinity', '1e1', '']))(
    'a movements limit of %s',
    async (_, limit) => {
      await expectRefused(() => api.getMovements(A, `limit=${seg(limit as string)}`), 'limit');
    },
  );

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['501 characters', 'r'.repeat(501)],
    ['not a string', 42],
  ])('an adjustment whose reason is %s', async (_, reason) => {
    await expectRefused(() => api.adjust(A, { delta: 1, reason }), 'reason');
  });

  it.each([
    ['empty', ''],
    ['501 characters', 'r'.repeat(501)],
    ['not a string', 42],
  ])('a restock whose reason is %s', async (_, reason) => {
    await expectRefused(() => api.restock(A, { quantity: 1, reason }), 'reason');
  });

  it('a new SKU whose name is 501 characters, empty or not a string is not created', async () => {
    for (const name of ['n'.repeat(501), '', 42]) {
      const sku = uniqueSku('BAD');
      await expectRefused(() => api.createSku({ sku, total: 1, name }), 'name');
      await expectNoSku(sku);
    }
  });

  it.each([
    ['a new SKU', () => api.createSku(null)],
    ['a restock', () => api.restock(A, 'five')],
    ['an adjustment', () => api.adjust(A, [1])],
    ['a return', () => api.recordReturn(undefined)],
  ] as const)('%s whose body is not an object', async (_, call) => {
    await expectRefused(call, '(body)');
  });

  // A hold's deadline is now ttlSeconds (the API computes expiresAt): the old bad expiresAt values,
  // then bad TTLs. 42 is not among them: 42 seconds is a valid TTL.
  const badTtls = cases([
    'tomorrow',
    'infinity',
    'epoch',
    '',
    '2030-13-01T00:00:00Z',
    1_900_000_000_000,
    null,
    0,
    -1,
    1.5,
    MAX_TTL_SECONDS + 1,
    Infinity,
    '60',
  ]);

  it.each(badTtls)('a hold for ttlSeconds %s', async (_, ttlSeconds) => {
    await expectRefused(
      () => api.hold({ reservationId: uniqueId('bad'), items: [{ sku: A, quantity: 1 }], ttlSeconds }),
      'ttlSeconds',
    );
  });

  it('a hold whose customerId is 129 characters', async () => {
    await expectRefused(
      () => api.hold({ reservationId: uniqueId('bad'), items: [{ sku: A, quantity: 1 }], customerId: 'c'.repeat(129) }),
      'customerId',
    );
  });

  it.each([...badTtls, ...cases([undefined])])(
    'an extension of a held reservation by ttlSeconds %s leaves its deadline',
    async (_, ttlSeconds) => {
      // A reservation of its own, as in the old test (PostgreSQL reads some of these strings as real timestamps).
      const own = await ownReservation();
      await expectRefused(() => api.extend(own.reservationId, { ttlSeconds }), 'ttlSeconds', [own.sku]);
    },
  );

  // A release's status is the route (cancel → CANCELLED); the nearest a client gets to passing one
  // is a status field in the cancel body.
  it.each(cases(['COMMITTED', 'HELD', 'PENDING', 'BOGUS', '', null]))(
    'a cancel with status %s leaves the reservation held',
    async (_, status) => {
      // A reservation of its own: a release that took such a status would corrupt it.
      const own = await ownReservation();
      await expectRefused(() => api.cancel(own.reservationId, { status }), 'status', [own.sku]);
    },
  );
});

// ------------------------------------------------------------------ free text

describe('free text that is not printable text, or is over its limit, is refused naming the field and changes nothing', () => {
  /** Not printable text: NUL, other control characters (C0, ESC, DEL, a newline) and a lone surrogate. */
  const unprintable = cases([
    'a\u0000b',
    'a\u0001b',
    '\u001b[31mred',
    'a\u007fb',
    'line 1\nline 2',
    'a\ud800b',
    '\udc00',
  ]);
  /** Each field with its limit in characters (ids 1..128, other text 1..500): one character over. */
  const tooLong = {
    paymentId: 'p'.repeat(129),
    customerId: 'c'.repeat(129),
    reason: 'r'.repeat(501),
    name: 'n'.repeat(501),
  };

  it.each([...unprintable, ...cases([tooLong.paymentId])])(
    'a commit whose paymentId is %s leaves the reservation held',
    async (_, paymentId) => {
      await expectRefused(() => api.commit(held.reservationId, { paymentId }), 'paymentId');
    },
  );

  it.each([...unprintable, ...cases([tooLong.reason])])(
    'a cancel whose reason is %s leaves the reservation held',
    async (_, reason) => {
      await expectRefused(() => api.cancel(held.reservationId, { reason }), 'reason');
    },
  );

  it.each([...unprintable, ...cases([tooLong.reason])])('a restock whose reason is %s', async (_, reason) => {
    await expectRefused(() => api.restock(A, { quantity: 1, reason }), 'reason');
  });

  it.each([...unprintable, ...cases([tooLong.reason])])('an adjustment whose reason is %s', async (_, reason) => {
    await expectRefused(() => api.adjust(A, { delta: -1, reason }), 'reason');
  });

  it.each([...unprintable, ...cases([tooLong.reason])])('a return whose reason is %s', async (_, reason) => {
    await expectRefused(
      () => api.recordReturn({ reservationId: sold, items: [{ sku: A, quantity: 1 }], reason }),
      'reason',
    );
  });

  it.each([...unprintable, ...cases([tooLong.customerId])])('a hold whose customerId is %s', async (_, customerId) => {
    const reservationId = uniqueId('bad');
    await expectRefused(() => api.hold({ reservationId, items: [{ sku: A, quantity: 1 }], customerId }), 'customerId');
    expect(await clients.db.query('SELECT 1 FROM reservations WHERE id = $1', [reservationId])).toMatchObject({
      rowCount: 0,
    });
  });

  it.each([...unprintable, ...cases([tooLong.name])])('a new SKU whose name is %s is not created', async (_, name) => {
    const sku = uniqueSku('BAD');
    await expectRefused(() => api.createSku({ sku, total: 1, name }), 'name');
    await expectNoSku(sku);
  });

  it('the limit counts characters, not UTF-16 units: a reason of 500 astral characters is taken as is', async () => {
    const own = uniqueSku('TXT');
    await stock.createSku({ sku: own, total: 1 });
    const reason = '\u{1F4E6}'.repeat(500); // 1,000 UTF-16 units
    const res = await api.restock(own, { quantity: 1, reason });
    expect({ status: res.status, body: res.body as unknown }).toEqual({
      status: 200,
      body: expect.objectContaining({ total: 2 }),
    });
    expect((await stock.getMovements(own)).movements[0]).toMatchObject({ kind: 'restock', reason });
  });
});

// ------------------------------------------------------------------ bodies that are not JSON

describe('bodies that are not JSON, or not sent as JSON, are refused naming (body) and change nothing', () => {
  it('a new SKU whose total is a literal NaN is not created', async () => {
    const sku = uniqueSku('BAD');
    await expectRefused(() => api.createSku(new Raw(`{"sku":"${sku}","total":NaN}`)), '(body)');
    await expectNoSku(sku);
  });

  it.each([
    [
      'a hold whose quantity is a literal undefined',
      () => api.hold(new Raw(`{"items":[{"sku":"${A}","quantity":undefined}]}`)),
    ],
    ['a restock sent as text/plain', () => api.restock(A, new Raw('{"quantity":1}', 'text/plain'))],
    [
      'an adjustment sent as a form',
      () => api.adjust(A, new Raw('delta=1&reason=count', 'application/x-www-form-urlencoded')),
    ],
    ['an extension with no body', () => api.extend(held.reservationId)],
  ] as const)('%s', async (_, call) => {
    await expectRefused(call, '(body)');
  });
});

// ------------------------------------------------------------------ valid input that looks like SQL

describe('strings that look like SQL are data, stored verbatim', () => {
  const sqlish = "'); DELETE FROM skus; --";

  it('a reason like "\'); DELETE FROM skus; --" is stored verbatim in the ledger and deletes nothing', async () => {
    const sku = uniqueSku('SQL');
    const name = "Robert'); DROP TABLE skus;--";
    const created = await api.createSku({ sku, total: 10, name });
    expect({ status: created.status, body: created.body as unknown }).toEqual({
      status: 201,
      body: expect.objectContaining({ sku, name, total: 10 }),
    });
    const skusBefore = Number((await clients.db.query<{ n: string }>('SELECT count(*) AS n FROM skus')).rows[0]!.n);

    expect(
      (
        await api.restock(
          sku,
          { quantity: 2, reason: sqlish },
          withKey("k'; DROP TABLE idempotency_keys;--" + uniqueId()),
        )
      ).status,
    ).toBe(200);
    expect((await api.adjust(sku, { delta: -1, reason: `${sqlish} $1 %s \\ "quoted" ' ` })).status).toBe(200);
    // The hold and the sale through the store: the reservation routes need Temporal, which this test does not run.
    const hold = {
      reservationId: uniqueId('sql'),
      items: [{ sku, quantity: 3 }],
      expiresAt: expiresIn(),
      customerId: "c'); DROP TABLE reservations;--",
    };
    await stock.hold(hold);
    await stock.commit(hold.reservationId, undefined, "pay'); DELETE FROM stock_movements;--");
    expect(
      (await api.recordReturn({ reservationId: hold.reservationId, items: [{ sku, quantity: 1 }], reason: sqlish }))
        .status,
    ).toBe(200);

    const moved = await api.getMovements(sku);
    expect(moved.status).toBe(200);
    const { movements } = moved.body as { movements: { kind: string; delta: number; reason?: string }[] };
    expect(movements.map((m) => [m.kind, m.delta, m.reason])).toEqual([
      ['return', 1, sqlish],
      ['sale', -3, undefined],
      ['adjustment', -1, `${sqlish} $1 %s \\ "quoted" ' `],
      ['restock', 2, sqlish],
      ['initial', 10, 'created'],
    ]);
    const read = await api.getStock(sku);
    expect({ status: read.status, body: read.body as unknown }).toEqual({
      status: 200,
      body: { sku, name, total: 9, reserved: 0, available: 9, lowStockThreshold: null, maxPerCustomer: null },
    });
    const stored = await clients.db.query<{ name: string; customer_id: string; payment_id: string }>(
      'SELECT s.name, r.customer_id, r.payment_id FROM skus s, reservations r WHERE s.sku = $1 AND r.id = $2',
      [sku, hold.reservationId],
    );
    expect(stored.rows).toEqual([
      { name, customer_id: hold.customerId, payment_id: "pay'); DELETE FROM stock_movements;--" },
    ]);
    const skusAfter = Number((await clients.db.query<{ n: string }>('SELECT count(*) AS n FROM skus')).rows[0]!.n);
    expect(skusAfter).toBeGreaterThanOrEqual(skusBefore);
    expect((await figures(clients, sku)).ledgerSum).toBe(9);
  });

  it('a release reason that looks like SQL is stored verbatim', async () => {
    // Through the store: a cancel over HTTP goes through Temporal, which this test does not run.
    const sku = uniqueSku('SQL');
    await stock.createSku({ sku, total: 5 });
    const hold = { reservationId: uniqueId('sql'), items: [{ sku, quantity: 1 }], expiresAt: expiresIn() };
    await stock.hold(hold);
    expect(await stock.release(hold.reservationId, [sku], 'CANCELLED', sqlish)).toEqual({ units: 1 });
    const row = await clients.db.query('SELECT status, reason FROM reservations WHERE id = $1', [hold.reservationId]);
    expect(row.rows).toEqual([{ status: 'CANCELLED', reason: sqlish }]);
  });
});

describe('a refused call leaves ids and keys usable', () => {
  it('a hold refused for bad input does not burn its reservation id', async () => {
    const sku = uniqueSku('BAD');
    await stock.createSku({ sku, total: 5 });
    const reservationId = uniqueId('bad');
    await expectRefused(() => api.hold({ reservationId, items: [{ sku, quantity: 0 }] }), 'items.0.quantity', [sku]);
    // The hold itself through the store, as the workflow's activity would make it.
    expect(await stock.hold({ reservationId, items: [{ sku, quantity: 2 }], expiresAt: expiresIn() })).toEqual({
      alreadyHeld: false,
    });
    expect((await api.getStock(sku)).body).toMatchObject({ reserved: 2 });
  });

  it('an idempotency key whose request was refused for bad input can be used for a good one', async () => {
    const sku = uniqueSku('BAD');
    await stock.createSku({ sku, total: 5 });
    const key = uniqueId('key');
    await expectRefused(() => api.restock(sku, { quantity: 0 }, withKey(key)), 'quantity', [sku]);
    for (let i = 0; i < 2; i++) {
      const res = await api.restock(sku, { quantity: 3 }, withKey(key));
      expect({ status: res.status, body: res.body as unknown }).toEqual({
        status: 200,
        body: expect.objectContaining({ total: 8 }),
      });
    }
  });
});
