/**
 * Per-customer limits (maxPerCustomer) in the stock module, against real Redis and PostgreSQL: the
 * limit is checked in hold.lua's atomic step, the counts (item:{SKU}:customers) follow every
 * script that adds or removes a hold or applies a sale or return, exactly once, and they come back
 * from PostgreSQL after a loss and through the reconciler after drift.
 */
import { keys } from '../../src/stock';
import { StockholdError } from '../../src/domain/errors';
import { ReconcilerStore } from '../../src/reconciler/store';
import { Reconciler } from '../../src/reconciler/reconciler';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expiresIn, newSku, refusal, testStock } from '../helpers/stock';

const clients = testStock();
const { stock, redis } = clients;

afterAll(() => clients.close());

/** A limited SKU of its own. */
async function limitedSku(total: number, maxPerCustomer: number): Promise<string> {
  const sku = uniqueSku('LIM');
  await newSku(clients, sku, total);
  await stock.updateSku(sku, { maxPerCustomer });
  return sku;
}

function holdFor(
  customerId: string | undefined,
  items: { sku: string; quantity: number }[],
  reservationId = uniqueId(),
) {
  return { reservationId, items, customerId, expiresAt: expiresIn() };
}

/** The customers hash of a SKU, as plain fields. */
const counts = (sku: string) => redis.hgetall(keys.customers(sku));

/** A reconciler that repairs at once (no grace) and sees every workflow as running. */
function reconciler() {
  const events: { kind: string; sku?: string }[] = [];
  const r = new Reconciler(stock, {
    graceMs: 0,
    running: async (ids) => new Set(ids),
    report: (e) => events.push({ kind: e.kind, sku: e.sku }),
  });
  return { r, events };
}

describe('settings', () => {
  it('PATCH sets and unsets a SKU’s name, threshold and limit in both stores', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10, 'old');
    expect(await stock.updateSku(sku, { name: 'new', lowStockThreshold: 3, maxPerCustomer: 2 })).toEqual({
      sku,
      name: 'new',
      total: 10,
      reserved: 0,
      available: 10,
      lowStockThreshold: 3,
      maxPerCustomer: 2,
    });
    expect(await stock.getStock(sku)).toMatchObject({ name: 'new', lowStockThreshold: 3, maxPerCustomer: 2 });
    // Only the fields given change; null unsets.
    expect(await stock.updateSku(sku, { lowStockThreshold: null })).toMatchObject({
      name: 'new',
      lowStockThreshold: null,
      maxPerCustomer: 2,
    });
    expect(await stock.updateSku(sku, { maxPerCustomer: null })).toMatchObject({
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    expect((await stock.getAvailability([sku])).items[0]).toMatchObject({
      name: 'new',
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    const row = await clients.db.query('SELECT name, low_stock_threshold, max_per_customer FROM skus WHERE sku = $1', [
      sku,
    ]);
    expect(row.rows[0]).toEqual({ name: 'new', low_stock_threshold: null, max_per_customer: null });
  });

  it('an unknown SKU is SKU_NOT_FOUND and nothing is created', async () => {
    const sku = uniqueSku('NONE');
    expect((await refusal(stock.updateSku(sku, { maxPerCustomer: 1 }))).code).toBe('SKU_NOT_FOUND');
    expect(await redis.exists(keys.stock(sku))).toBe(0);
  });

  it('a SKU whose counters Redis lost answers 503 and PostgreSQL keeps the old settings', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 4);
    await redis.del(keys.stock(sku));
    expect((await refusal(stock.updateSku(sku, { maxPerCustomer: 1 }))).code).toBe('UNAVAILABLE');
    const row = await clients.db.query('SELECT max_per_customer FROM skus WHERE sku = $1', [sku]);
    expect(row.rows[0]).toEqual({ max_per_customer: null });
  });
});

describe('the limit in the hold', () => {
  it('refuses units beyond the limit with what the customer holds, across reservations', async () => {
    const sku = await limitedSku(100, 3);
    await stock.hold(holdFor('alice', [{ sku, quantity: 2 }]));
    const err = await refusal(stock.hold(holdFor('alice', [{ sku, quantity: 2 }])));
    expect(err.code).toBe('CUSTOMER_LIMIT_EXCEEDED');
    expect(err.status).toBe(409);
    expect(err.details).toEqual({ sku, customerId: 'alice', limit: 3, held: 2, bought: 0, requested: 2 });
    await stock.hold(holdFor('alice', [{ sku, quantity: 1 }]));
    // Another customer has a limit of their own.
    await stock.hold(holdFor('bob', [{ sku, quantity: 3 }]));
    expect(await stock.getStock(sku)).toMatchObject({ reserved: 6 });
    const c = await counts(sku);
    expect({ alice: c['h:alice'], bob: c['h:bob'] }).toEqual({ alice: '3', bob: '3' });
    await expectConsistent(clients, sku);
  });

  it('a cart with a limited SKU and no customer is INVALID_REQUEST naming customerId, and holds nothing', async () => {
    const sku = await limitedSku(10, 1);
    const free = uniqueSku();
    await newSku(clients, free, 10);
    const err = await refusal(
      stock.hold(
        holdFor(undefined, [
          { sku: free, quantity: 1 },
          { sku, quantity: 1 },
        ]),
      ),
    );
    expect({ code: err.code, field: err.details.field }).toEqual({ code: 'INVALID_REQUEST', field: 'customerId' });
    expect((await stock.getStock(free)).reserved).toBe(0);
    expect((await stock.getStock(sku)).reserved).toBe(0);
  });

  it('a refused limited line gives back the cart’s other lines and their customer counts', async () => {
    const sku = await limitedSku(10, 1);
    const free = uniqueSku();
    await newSku(clients, free, 10);
    await stock.hold(holdFor('carol', [{ sku, quantity: 1 }]));
    const err = await refusal(
      stock.hold(
        holdFor('carol', [
          { sku: free, quantity: 2 },
          { sku, quantity: 1 },
        ]),
      ),
    );
    expect(err.code).toBe('CUSTOMER_LIMIT_EXCEEDED');
    expect((await stock.getStock(free)).reserved).toBe(0);
    expect(await counts(free)).toEqual({});
  });

  it('a retried hold of the same reservation is not refused by its own units', async () => {
    const sku = await limitedSku(10, 1);
    const hold = holdFor('dave', [{ sku, quantity: 1 }]);
    expect(await stock.hold(hold)).toEqual({ alreadyHeld: false });
    expect(await stock.hold(hold)).toEqual({ alreadyHeld: true });
    expect(await counts(sku)).toEqual({ 'h:dave': '1', [`o:${hold.reservationId}`]: 'dave' });
  });

  it('a reservation whose run gave up for an outage holds again in a new run: the lines of its REJECTED run do not count against its customer', async () => {
    // What a client's retry of a 503 does on a limited SKU (docs/API.md, "What a 503 means").
    const sku = await limitedSku(10, 1);
    const hold = holdFor('una', [{ sku, quantity: 1 }]);
    expect(await stock.hold({ ...hold, run: 'r1' })).toEqual({ alreadyHeld: false });
    expect(await stock.release(hold.reservationId, [sku], 'REJECTED', 'hold failed: stores unavailable', 'r1')).toEqual(
      { units: 1 },
    );
    expect(await counts(sku)).toEqual({});
    expect(await stock.hold({ ...hold, run: 'r2' })).toEqual({ alreadyHeld: false });
    expect(await counts(sku)).toEqual({ 'h:una': '1', [`o:${hold.reservationId}`]: 'una' });
    await expectConsistent(clients, sku);
  });

  it('SKUs without a limit count holds per customer but never bought units', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdFor('erin', [{ sku, quantity: 4 }]);
    await stock.hold(hold);
    expect(await counts(sku)).toEqual({ 'h:erin': '4', [`o:${hold.reservationId}`]: 'erin' });
    await stock.commit(hold.reservationId);
    expect(await counts(sku)).toEqual({});
  });

  it('10,000 concurrent hold scripts from 2,000 customers, 5 each, on a limit of 1: every customer holds exactly 1', async () => {
    const sku = await limitedSku(3_000, 1);
    const customers = Array.from({ length: 2_000 }, (_, i) => `storm-${i}`);
    // The Redis step alone (the decision), so the PostgreSQL pool does not pace the storm. A script
    // call that outlasts the client's command timeout on a busy machine may still have held: it is
    // tried again with the same id until it has an answer (a hold that landed answers alreadyHeld).
    const ids = Array.from({ length: 10_000 }, () => uniqueId());
    const holdOne = (i: number) => stock.counters.hold(ids[i]!, '', [{ sku, quantity: 1 }], customers[i % 2_000]);
    const results = await Promise.allSettled(ids.map((_, i) => holdOne(i)));
    for (;;) {
      const again = results.flatMap((r, i) =>
        r.status === 'rejected' && !(r.reason instanceof StockholdError) ? [i] : [],
      );
      if (again.length === 0) break;
      for (let b = 0; b < again.length; b += 500) {
        const batch = again.slice(b, b + 500);
        const answers = await Promise.allSettled(batch.map(holdOne));
        batch.forEach((i, k) => (results[i] = answers[k]!));
      }
    }
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r.reason as StockholdError).code);
    expect(results.length - refused.length).toBe(2_000);
    expect(new Set(refused)).toEqual(new Set(['CUSTOMER_LIMIT_EXCEEDED']));
    const c = await counts(sku);
    expect(customers.every((id) => c[`h:${id}`] === '1')).toBe(true);
    expect(await stock.getStock(sku)).toMatchObject({ reserved: 2_000 });
  });
});

describe('counts follow every release, sale and return, once', () => {
  it('a release lowers what the customer holds, once', async () => {
    const sku = await limitedSku(10, 2);
    const hold = holdFor('fay', [{ sku, quantity: 2 }]);
    await stock.hold(hold);
    expect(await stock.release(hold.reservationId, [sku], 'CANCELLED')).toEqual({ units: 2 });
    expect(await stock.release(hold.reservationId, [sku], 'CANCELLED')).toEqual({ units: 0 });
    expect(await counts(sku)).toEqual({});
    await stock.hold(holdFor('fay', [{ sku, quantity: 2 }]));
  });

  it('a commit moves held units to bought, once, and bought units count against the limit', async () => {
    const sku = await limitedSku(10, 2);
    const hold = holdFor('gus', [{ sku, quantity: 2 }]);
    await stock.hold(hold);
    await stock.commit(hold.reservationId);
    await stock.commit(hold.reservationId);
    expect(await counts(sku)).toEqual({ 'b:gus': '2' });
    const err = await refusal(stock.hold(holdFor('gus', [{ sku, quantity: 1 }])));
    expect(err.details).toEqual({ sku, customerId: 'gus', limit: 2, held: 0, bought: 2, requested: 1 });
  });

  it('a partial commit counts only the units sold; the rest goes back', async () => {
    const sku = await limitedSku(10, 3);
    const hold = holdFor('hal', [{ sku, quantity: 3 }]);
    await stock.hold(hold);
    await stock.commit(hold.reservationId, [{ sku, quantity: 1 }]);
    expect(await counts(sku)).toEqual({ 'b:hal': '1' });
    await stock.hold(holdFor('hal', [{ sku, quantity: 2 }]));
  });

  it('a commit retried after PostgreSQL committed but before Redis did counts the sale once', async () => {
    const sku = await limitedSku(10, 5);
    const hold = holdFor('ida', [{ sku, quantity: 2 }]);
    await stock.hold(hold);
    const spy = jest.spyOn(redis, 'stockCommit').mockRejectedValueOnce(new Error('connection lost'));
    try {
      await expect(stock.commit(hold.reservationId)).rejects.toThrow('connection lost');
    } finally {
      spy.mockRestore();
    }
    expect(await counts(sku)).toEqual({ 'h:ida': '2', [`o:${hold.reservationId}`]: 'ida' });
    await stock.commit(hold.reservationId);
    await stock.commit(hold.reservationId);
    expect(await counts(sku)).toEqual({ 'b:ida': '2' });
    await expectConsistent(clients, sku);
  });

  it('a return lowers what the customer bought, once per return, also when its request is repeated', async () => {
    const sku = await limitedSku(10, 2);
    const hold = holdFor('jo', [{ sku, quantity: 2 }]);
    await stock.hold(hold);
    await stock.commit(hold.reservationId);
    const body = { reservationId: hold.reservationId, items: [{ sku, quantity: 1 }] };
    await stock.recordReturn(body, `ret-${hold.reservationId}`);
    await stock.recordReturn(body, `ret-${hold.reservationId}`);
    expect(await counts(sku)).toEqual({ 'b:jo': '1' });
    await stock.recordReturn(body);
    expect(await counts(sku)).toEqual({});
    await stock.hold(holdFor('jo', [{ sku, quantity: 2 }]));
  });

  it('setting a limit counts what customers bought before it; removing it forgets bought units', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    for (const [customer, quantity] of [
      ['kim', 2],
      ['kim', 1],
      ['lee', 1],
    ] as const) {
      const hold = holdFor(customer, [{ sku, quantity }]);
      await stock.hold(hold);
      await stock.commit(hold.reservationId);
    }
    const live = holdFor('lee', [{ sku, quantity: 1 }]);
    await stock.hold(live);
    await stock.updateSku(sku, { maxPerCustomer: 3 });
    expect(await counts(sku)).toEqual({ 'b:kim': '3', 'b:lee': '1', 'h:lee': '1', [`o:${live.reservationId}`]: 'lee' });
    expect((await refusal(stock.hold(holdFor('kim', [{ sku, quantity: 1 }])))).details).toMatchObject({
      held: 0,
      bought: 3,
    });
    // A sale after the limit was set is counted by its commit, not twice.
    await stock.commit(live.reservationId);
    expect((await counts(sku))['b:lee']).toBe('2');
    await stock.updateSku(sku, { maxPerCustomer: null });
    expect(await counts(sku)).toEqual({});
    await stock.hold(holdFor('kim', [{ sku, quantity: 5 }]));
  });
});

describe('after a loss', () => {
  it('a SKU reloaded from PostgreSQL gets its limit, held and bought counts back', async () => {
    const sku = await limitedSku(10, 3);
    const sold = holdFor('max', [{ sku, quantity: 2 }]);
    await stock.hold(sold);
    await stock.commit(sold.reservationId);
    const live = holdFor('max', [{ sku, quantity: 1 }]);
    await stock.hold(live);
    await stock.hold(holdFor('ned', [{ sku, quantity: 2 }]));
    const before = await counts(sku);

    await redis.del(keys.stock(sku), keys.holds(sku), keys.done(sku), keys.customers(sku));
    const [snapshot] = await new ReconcilerStore(stock.db).snapshot([sku]);
    expect((await stock.counters.load(sku, snapshot!, 'missing')).loaded).toBe(true);
    expect(await counts(sku)).toEqual(before);
    expect(await stock.getStock(sku)).toMatchObject({ total: 8, reserved: 3, maxPerCustomer: 3 });
    expect((await refusal(stock.hold(holdFor('max', [{ sku, quantity: 1 }])))).details).toMatchObject({
      limit: 3,
      held: 1,
      bought: 2,
    });
    await expectConsistent(clients, sku);
  });

  it('the reconciler applies a sale Redis missed and counts it once for its customer', async () => {
    const sku = await limitedSku(10, 5);
    const hold = holdFor('ola', [{ sku, quantity: 2 }]);
    await stock.hold(hold);
    const spy = jest.spyOn(redis, 'stockCommit').mockRejectedValueOnce(new Error('connection lost'));
    try {
      await expect(stock.commit(hold.reservationId)).rejects.toThrow('connection lost');
    } finally {
      spy.mockRestore();
    }
    const { r, events } = reconciler();
    await r.scan();
    expect(events.filter((e) => e.sku === sku).map((e) => e.kind)).toEqual(['pending_movement']);
    expect(await counts(sku)).toEqual({ 'b:ola': '2' });
    await stock.commit(hold.reservationId);
    expect(await counts(sku)).toEqual({ 'b:ola': '2' });
  });

  it('the reconciler repairs held and bought counts that drifted, and settings Redis lost', async () => {
    const sku = await limitedSku(10, 4);
    const sold = holdFor('pia', [{ sku, quantity: 1 }]);
    await stock.hold(sold);
    await stock.commit(sold.reservationId);
    const live = holdFor('pia', [{ sku, quantity: 2 }]);
    await stock.hold(live);
    const right = await counts(sku);

    // A replica that missed writes: a held count and a bought count lost, a stray field.
    await redis.hdel(keys.customers(sku), 'h:pia', `o:${live.reservationId}`, 'b:pia');
    await redis.hset(keys.customers(sku), 'h:ghost', '3');
    const { r, events } = reconciler();
    await r.scan();
    expect(
      events
        .filter((e) => e.sku === sku)
        .map((e) => e.kind)
        .sort(),
    ).toEqual(['customer_bought', 'customer_held']);
    expect(await counts(sku)).toEqual(right);

    // The limit itself lost: loaded again from PostgreSQL, with the bought counts.
    await redis.hdel(keys.stock(sku), 'maxPerCustomer', 'bmark');
    await redis.hdel(keys.customers(sku), 'b:pia');
    await r.scan();
    expect(events.filter((e) => e.sku === sku).map((e) => e.kind)).toContain('settings');
    expect(await stock.getStock(sku)).toMatchObject({ maxPerCustomer: 4 });
    expect(await counts(sku)).toEqual(right);

    // Nothing left to repair.
    const n = events.length;
    await r.scan();
    expect(events.slice(n).filter((e) => e.sku === sku)).toEqual([]);
  });
});
