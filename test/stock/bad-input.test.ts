import { StockholdError, keys } from '../../src/stock';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expiresIn, figures, refusal, testStock } from '../helpers/stock';

/**
 * Bad input to the stock module is refused with INVALID_REQUEST naming the bad field in
 * `details.field`, and changes nothing: the SKUs' figures in Redis and PostgreSQL, their holds,
 * their reservations and their ledger are the same before and after.
 */

const clients = testStock();
const { stock } = clients;

afterAll(() => clients.close());

/** A value of any type where the store's signature wants another: the point of these tests. */
const bad = (value: unknown) => value as never;

/** How a value reads in a test name: NaN, Infinity, control characters and long strings legibly. */
function show(value: unknown): string {
  if (typeof value === 'string' && value.length > 60) return `'${value[0]}' x ${value.length}`;
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value === undefined) return 'undefined';
  return JSON.stringify(value);
}

const cases = (values: unknown[]) => values.map((v) => [show(v), v] as const);

// ------------------------------------------------------------------ the stock every test starts from

let A: string;
let B: string;
/** A live reservation: A x3, B x2. A bad call must never release or sell it. */
let held: { reservationId: string; items: { sku: string; quantity: number }[]; expiresAt: string };
/** A committed reservation of A x2, so returns have something to return. */
let sold: string;

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

/** The call is refused with INVALID_REQUEST naming `field`, and the SKUs (A and B) are exactly as before. */
async function expectRefused(call: () => Promise<unknown>, field: string, skus?: string[]): Promise<StockholdError> {
  const before = await snapshot(skus);
  const err = await refusal(call());
  expect({ code: err.code, field: err.details.field }).toEqual({ code: 'INVALID_REQUEST', field });
  expect(err.status).toBe(400);
  expect(await snapshot(skus)).toEqual(before);
  return err;
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

// ------------------------------------------------------------------ quantities

const badLineQuantities = cases([0, -1, 1.5, NaN, Infinity, -Infinity, '1', 10_001, 2 ** 31, null, undefined, true, [1], {}]);

describe('bad line quantities are refused and change nothing', () => {
  it.each(badLineQuantities)('hold of quantity %s', async (_, q) => {
    const reservationId = uniqueId('bad');
    await expectRefused(() => stock.hold({ reservationId, items: [{ sku: A, quantity: bad(q) }], expiresAt: expiresIn() }), 'items.0.quantity');
  });

  it.each(badLineQuantities)('hold whose second line has quantity %s holds neither line', async (_, q) => {
    const reservationId = uniqueId('bad');
    await expectRefused(
      () =>
        stock.hold({
          reservationId,
          items: [
            { sku: A, quantity: 1 },
            { sku: B, quantity: bad(q) },
          ],
          expiresAt: expiresIn(),
        }),
      'items.1.quantity',
    );
  });

  it.each(badLineQuantities)('commit of quantity %s leaves the reservation held', async (_, q) => {
    await expectRefused(() => stock.commit(held.reservationId, [{ sku: A, quantity: bad(q) }]), 'items.0.quantity');
  });

  it.each(badLineQuantities)('return of quantity %s', async (_, q) => {
    await expectRefused(() => stock.recordReturn({ reservationId: sold, items: [{ sku: A, quantity: q }] }), 'items.0.quantity');
  });
});

describe('bad stock figures are refused and change nothing', () => {
  const badTotals = cases([-1, 1.5, NaN, Infinity, -Infinity, '5', 2 ** 31, 2 ** 53, null, undefined, false]);

  it.each(badTotals)('a new SKU with total %s is not created', async (_, total) => {
    const sku = uniqueSku('BAD');
    await expectRefused(() => stock.createSku({ sku, total, name: 'never' }), 'total');
    await expectNoSku(sku);
  });

  it.each(cases([0, -1, 1.5, NaN, Infinity, '5', 2 ** 31, null, undefined]))('a restock of %s', async (_, quantity) => {
    await expectRefused(() => stock.restock(A, { quantity, reason: 'truck' }), 'quantity');
  });

  it.each(cases([0, 1.5, -0.5, NaN, Infinity, -Infinity, '5', '-1', 2 ** 31, -(2 ** 31), null, undefined]))(
    'an adjustment by %s',
    async (_, delta) => {
      await expectRefused(() => stock.adjust(A, { delta, reason: 'count' }), 'delta');
    },
  );

  it('an adjustment that would take total past 2^31-1 is refused naming delta', async () => {
    await expectRefused(() => stock.adjust(A, { delta: 2 ** 31 - 1, reason: 'count' }), 'delta');
  });

  it('a restock that would take total past 2^31-1 is refused naming quantity', async () => {
    await expectRefused(() => stock.restock(A, { quantity: 2 ** 31 - 1, reason: 'truck' }), 'quantity');
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

describe('malformed SKUs are refused and change nothing', () => {
  it.each(badSkus)('creating SKU %s', async (_, sku) => {
    await expectRefused(() => stock.createSku({ sku, total: 1 }), 'sku');
    await expectNoSku(sku);
  });

  it.each(badSkus)('restocking SKU %s', async (_, sku) => {
    await expectRefused(() => stock.restock(sku, { quantity: 1 }), 'sku');
  });

  it.each(badSkus)('adjusting SKU %s', async (_, sku) => {
    await expectRefused(() => stock.adjust(sku, { delta: 1, reason: 'count' }), 'sku');
  });

  it.each(badSkus)('reading SKU %s (stock, holds, movements)', async (_, sku) => {
    await expectRefused(() => stock.getStock(sku), 'sku');
    await expectRefused(() => stock.getHolds(sku), 'sku');
    await expectRefused(() => stock.getMovements(sku), 'sku');
  });

  it.each(badSkus)('availability of [A, %s]', async (_, sku) => {
    await expectRefused(() => stock.getAvailability([A, sku]), 'skus.1');
  });

  it.each(badSkus)('a hold whose second line is SKU %s', async (_, sku) => {
    const items = [
      { sku: A, quantity: 1 },
      { sku: bad(sku), quantity: 1 },
    ];
    await expectRefused(() => stock.hold({ reservationId: uniqueId('bad'), items, expiresAt: expiresIn() }), 'items.1.sku');
  });

  it.each(badSkus)('a commit naming SKU %s leaves the reservation held', async (_, sku) => {
    await expectRefused(() => stock.commit(held.reservationId, [{ sku: bad(sku), quantity: 1 }]), 'items.0.sku');
  });

  it.each(badSkus)('a return naming SKU %s', async (_, sku) => {
    await expectRefused(() => stock.recordReturn({ reservationId: sold, items: [{ sku, quantity: 1 }] }), 'items.0.sku');
  });

  it.each(badSkus)('a release naming SKU %s leaves the reservation held', async (_, sku) => {
    await expectRefused(() => stock.release(held.reservationId, [A, bad(sku)], 'CANCELLED'), 'skus.1');
  });
});

// ------------------------------------------------------------------ unknown fields, carts

describe('unknown fields are refused, naming the unknown field, and change nothing', () => {
  const line = () => ({ sku: A, quantity: 1 });
  it.each([
    ['a new SKU', () => stock.createSku({ sku: uniqueSku('BAD'), total: 1, extra: 1 }), 'extra'],
    ['a restock', () => stock.restock(A, { quantity: 1, reason: 'truck', extra: 1 }), 'extra'],
    ['an adjustment', () => stock.adjust(A, { delta: 1, reason: 'count', reserved: 0 }), 'reserved'],
    ['a return', () => stock.recordReturn({ reservationId: sold, items: [line()], refund: true }), 'refund'],
    ['a return line', () => stock.recordReturn({ reservationId: sold, items: [{ ...line(), price: 1 }] }), 'items.0.price'],
    ['a hold', () => stock.hold(bad({ reservationId: uniqueId('bad'), items: [line()], expiresAt: expiresIn(), ttl: 5 })), 'ttl'],
    ['a hold line', () => stock.hold({ reservationId: uniqueId('bad'), items: [bad({ ...line(), price: 1 })], expiresAt: expiresIn() }), 'items.0.price'],
    ['a commit line', () => stock.commit(held.reservationId, [bad({ ...line(), constructor: 1 })]), 'items.0.constructor'],
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
    ['a hold', (items: unknown) => stock.hold({ reservationId: uniqueId('bad'), items: bad(items), expiresAt: expiresIn() })],
    ['a commit', (items: unknown) => stock.commit(held.reservationId, bad(items))],
    ['a return', (items: unknown) => stock.recordReturn({ reservationId: sold, items })],
  ] as const)('%s with a SKU twice, 51 lines, no lines or no array', async (_, call) => {
    await expectRefused(() => call(duplicate()), 'items.1.sku');
    await expectRefused(() => call(many(51)), 'items');
    await expectRefused(() => call([]), 'items');
    await expectRefused(() => call({ sku: A, quantity: 1 }), 'items');
    await expectRefused(() => call(null), 'items');
  });

  it('a hold of 50 lines is not refused as input (the SKUs are unknown)', async () => {
    const err = await refusal(stock.hold({ reservationId: uniqueId('bad'), items: many(50), expiresAt: expiresIn() }));
    expect(err.code).toBe('SKU_NOT_FOUND');
  });

  it('a release naming 51 SKUs, no SKU or a SKU list that is not a list leaves the reservation held', async () => {
    await expectRefused(() => stock.release(held.reservationId, many(51).map((l) => l.sku), 'CANCELLED'), 'skus');
    await expectRefused(() => stock.release(held.reservationId, [], 'CANCELLED'), 'skus');
    await expectRefused(() => stock.release(held.reservationId, bad(A), 'CANCELLED'), 'skus');
  });

  it('availability of 101 SKUs or of none', async () => {
    await expectRefused(() => stock.getAvailability(many(101).map((l) => l.sku)), 'skus');
    await expectRefused(() => stock.getAvailability([]), 'skus');
    await expectRefused(() => stock.getAvailability(A), 'skus');
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

describe('malformed reservation ids are refused and change nothing', () => {
  it.each(badReservationIds)('a hold with id %s', async (_, id) => {
    await expectRefused(() => stock.hold({ reservationId: bad(id), items: [{ sku: A, quantity: 1 }], expiresAt: expiresIn() }), 'reservationId');
  });

  it.each(badReservationIds)('a release of id %s', async (_, id) => {
    await expectRefused(() => stock.release(bad(id), [A, B], 'CANCELLED'), 'reservationId');
  });

  it.each(badReservationIds)('a commit of id %s', async (_, id) => {
    await expectRefused(() => stock.commit(bad(id)), 'reservationId');
    await expectRefused(() => stock.commit(bad(id), [{ sku: A, quantity: 1 }]), 'reservationId');
  });

  it.each(badReservationIds)('an extension of id %s', async (_, id) => {
    await expectRefused(() => stock.extend(bad(id), expiresIn()), 'reservationId');
  });

  it.each(badReservationIds)('a return for id %s', async (_, id) => {
    await expectRefused(() => stock.recordReturn({ reservationId: id, items: [{ sku: A, quantity: 1 }] }), 'reservationId');
  });
});

// ------------------------------------------------------------------ idempotency keys

describe('bad idempotency keys are refused and change nothing', () => {
  const badKeys = cases(['', 'k'.repeat(129), 'a\nb', 'a\tb', 'a\rb', 'a\u0000b', 'a\u001bb', 'a\u007fb', 'clé', 'ключ', 42, null, {}]);

  it.each(badKeys)('a new SKU under key %s is not created', async (_, key) => {
    const sku = uniqueSku('BAD');
    await expectRefused(() => stock.createSku({ sku, total: 1 }, key), 'Idempotency-Key');
    await expectNoSku(sku);
  });

  it.each(badKeys)('a restock under key %s', async (_, key) => {
    await expectRefused(() => stock.restock(A, { quantity: 1 }, key), 'Idempotency-Key');
  });

  it.each(badKeys)('an adjustment under key %s', async (_, key) => {
    await expectRefused(() => stock.adjust(A, { delta: -1, reason: 'count' }, key), 'Idempotency-Key');
  });

  it.each(badKeys)('a return under key %s', async (_, key) => {
    await expectRefused(() => stock.recordReturn({ reservationId: sold, items: [{ sku: A, quantity: 1 }] }, key), 'Idempotency-Key');
  });
});

// ------------------------------------------------------------------ other fields

describe('other bad fields are refused and change nothing', () => {
  it.each(cases([0, 501, -1, 1.5, NaN, Infinity, '10', null]))('a movements limit of %s', async (_, limit) => {
    await expectRefused(() => stock.getMovements(A, limit), 'limit');
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['501 characters', 'r'.repeat(501)],
    ['not a string', 42],
  ])('an adjustment whose reason is %s', async (_, reason) => {
    await expectRefused(() => stock.adjust(A, { delta: 1, reason }), 'reason');
  });

  it.each([
    ['empty', ''],
    ['501 characters', 'r'.repeat(501)],
    ['not a string', 42],
  ])('a restock whose reason is %s', async (_, reason) => {
    await expectRefused(() => stock.restock(A, { quantity: 1, reason }), 'reason');
  });

  it('a new SKU whose name is 201 characters or not a string is not created', async () => {
    for (const name of ['n'.repeat(201), 42]) {
      const sku = uniqueSku('BAD');
      await expectRefused(() => stock.createSku({ sku, total: 1, name }), 'name');
      await expectNoSku(sku);
    }
  });

  it.each([
    ['a new SKU', () => stock.createSku(null)],
    ['a restock', () => stock.restock(A, 'five')],
    ['an adjustment', () => stock.adjust(A, [1])],
    ['a return', () => stock.recordReturn(undefined)],
  ] as const)('%s whose body is not an object', async (_, call) => {
    await expectRefused(call, '(body)');
  });

  it.each(cases(['tomorrow', '', '2030-13-01T00:00:00Z', 1_900_000_000_000, null]))('a hold expiring at %s', async (_, expiresAt) => {
    await expectRefused(() => stock.hold({ reservationId: uniqueId('bad'), items: [{ sku: A, quantity: 1 }], expiresAt: bad(expiresAt) }), 'expiresAt');
  });

  it('a hold whose customerId is 129 characters', async () => {
    const hold = { reservationId: uniqueId('bad'), items: [{ sku: A, quantity: 1 }], expiresAt: expiresIn(), customerId: 'c'.repeat(129) };
    await expectRefused(() => stock.hold(hold), 'customerId');
  });

  it.each(cases(['tomorrow', 'infinity', 'epoch', '', '2030-13-01T00:00:00Z', 42, null]))(
    'an extension of a held reservation to %s leaves its deadline',
    async (_, expiresAt) => {
      // A reservation of its own: PostgreSQL reads some of these strings as real timestamps.
      const sku = uniqueSku('BAD');
      await stock.createSku({ sku, total: 5 });
      const hold = { reservationId: uniqueId('bad'), items: [{ sku, quantity: 2 }], expiresAt: expiresIn() };
      await stock.hold(hold);
      await expectRefused(() => stock.extend(hold.reservationId, bad(expiresAt)), 'expiresAt', [sku]);
    },
  );

  it.each(cases(['COMMITTED', 'HELD', 'PENDING', 'BOGUS', '', null]))('a release with status %s leaves the reservation held', async (_, status) => {
    // A reservation of its own: a release that took such a status would corrupt it.
    const sku = uniqueSku('BAD');
    await stock.createSku({ sku, total: 5 });
    const hold = { reservationId: uniqueId('bad'), items: [{ sku, quantity: 2 }], expiresAt: expiresIn() };
    await stock.hold(hold);
    await expectRefused(() => stock.release(hold.reservationId, [sku], bad(status)), 'status', [sku]);
  });
});

// ------------------------------------------------------------------ valid input that looks like SQL

describe('strings that look like SQL are data, stored verbatim', () => {
  const sqlish = "'); DELETE FROM skus; --";

  it('a reason like "\'); DELETE FROM skus; --" is stored verbatim in the ledger and deletes nothing', async () => {
    const sku = uniqueSku('SQL');
    const name = "Robert'); DROP TABLE skus;--";
    expect(await stock.createSku({ sku, total: 10, name })).toMatchObject({ sku, name, total: 10 });
    const skusBefore = Number((await clients.db.query<{ n: string }>('SELECT count(*) AS n FROM skus')).rows[0]!.n);

    await stock.restock(sku, { quantity: 2, reason: sqlish }, "k'; DROP TABLE idempotency_keys;--" + uniqueId());
    await stock.adjust(sku, { delta: -1, reason: `${sqlish} $1 %s \\ "quoted" ' ` });
    const hold = { reservationId: uniqueId('sql'), items: [{ sku, quantity: 3 }], expiresAt: expiresIn(), customerId: "c'); DROP TABLE reservations;--" };
    await stock.hold(hold);
    await stock.commit(hold.reservationId, undefined, "pay'); DELETE FROM stock_movements;--");
    await stock.recordReturn({ reservationId: hold.reservationId, items: [{ sku, quantity: 1 }], reason: sqlish });

    const { movements } = await stock.getMovements(sku);
    expect(movements.map((m) => [m.kind, m.delta, m.reason])).toEqual([
      ['return', 1, sqlish],
      ['sale', -3, undefined],
      ['adjustment', -1, `${sqlish} $1 %s \\ "quoted" ' `],
      ['restock', 2, sqlish],
      ['initial', 10, 'created'],
    ]);
    expect(await stock.getStock(sku)).toEqual({ sku, name, total: 9, reserved: 0, available: 9 });
    const stored = await clients.db.query<{ name: string; customer_id: string; payment_id: string }>(
      'SELECT s.name, r.customer_id, r.payment_id FROM skus s, reservations r WHERE s.sku = $1 AND r.id = $2',
      [sku, hold.reservationId],
    );
    expect(stored.rows).toEqual([{ name, customer_id: hold.customerId, payment_id: "pay'); DELETE FROM stock_movements;--" }]);
    const skusAfter = Number((await clients.db.query<{ n: string }>('SELECT count(*) AS n FROM skus')).rows[0]!.n);
    expect(skusAfter).toBeGreaterThanOrEqual(skusBefore);
    expect((await figures(clients, sku)).ledgerSum).toBe(9);
  });

  it('a release reason that looks like SQL is stored verbatim', async () => {
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
    expect((await refusal(stock.hold({ reservationId, items: [{ sku, quantity: 0 }], expiresAt: expiresIn() }))).code).toBe('INVALID_REQUEST');
    expect(await stock.hold({ reservationId, items: [{ sku, quantity: 2 }], expiresAt: expiresIn() })).toEqual({ alreadyHeld: false });
    expect((await stock.getStock(sku)).reserved).toBe(2);
  });

  it('an idempotency key whose request was refused for bad input can be used for a good one', async () => {
    const sku = uniqueSku('BAD');
    await stock.createSku({ sku, total: 5 });
    const key = uniqueId('key');
    expect((await refusal(stock.restock(sku, { quantity: 0 }, key))).code).toBe('INVALID_REQUEST');
    expect(await stock.restock(sku, { quantity: 3 }, key)).toMatchObject({ total: 8 });
    expect(await stock.restock(sku, { quantity: 3 }, key)).toMatchObject({ total: 8 });
  });
});
