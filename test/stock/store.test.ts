import { keys } from '../../src/stock';
import { StockholdError } from '../../src/domain/errors';
import { rebuildIfLost } from '../../src/reconciler/rebuild';
import { TEST_LOSSY_REDIS_URL, uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expiresIn, figures, holdOf, newSku, refusal, testStock } from '../helpers/stock';
import { ReconcilerStore } from '../../src/reconciler/store';

const clients = testStock();
const { stock } = clients;

afterAll(() => clients.close());

describe('concurrent holds never oversell', () => {
  it.each([1, 100])('10,000 concurrent holds of 1 unit on stock %i: exactly that many succeed', async (units) => {
    const sku = uniqueSku();
    await newSku(clients, sku, units);
    const holds = Array.from({ length: 10_000 }, () => holdOf(sku, 1));
    const results = await Promise.allSettled(holds.map((h) => stock.hold(h)));
    // 10,000 commands queued at once in one client can outlast its 1.5 s command timeout on a busy
    // machine: that caller hears a timeout (or UNAVAILABLE) although its hold may have landed. As a
    // client does, it tries again with the same reservation id until it has an answer (a hold that
    // landed answers alreadyHeld); the figures below are then exact however loaded the machine is.
    const refused = (r: PromiseSettledResult<unknown>) =>
      r.status === 'rejected' && (r.reason as StockholdError).code === 'INSUFFICIENT_STOCK';
    const transient = (r: PromiseSettledResult<unknown>) =>
      r.status === 'rejected' && (!(r.reason instanceof StockholdError) || r.reason.code === 'UNAVAILABLE');
    for (;;) {
      const again = results.flatMap((r, i) => (transient(r) ? [i] : []));
      if (again.length === 0) break;
      for (let b = 0; b < again.length; b += 500) {
        const batch = again.slice(b, b + 500);
        const answers = await Promise.allSettled(batch.map((i) => stock.hold(holds[i]!)));
        batch.forEach((i, k) => (results[i] = answers[k]!));
      }
    }
    const won = results.filter((r) => r.status === 'fulfilled').length;
    const lost = results.filter(refused).length;
    expect(won).toBe(units);
    expect(lost).toBe(10_000 - units);
    const f = await figures(clients, sku);
    expect(f.redisReserved).toBe(units);
    expect(f.holdCount).toBe(units);
    await expectConsistent(clients, sku);
  });
});

describe('retried steps apply once', () => {
  it('the same hold run twice holds once', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 3);
    expect(await stock.hold(hold)).toEqual({ alreadyHeld: false });
    expect(await stock.hold(hold)).toEqual({ alreadyHeld: true });
    expect((await stock.getStock(sku)).reserved).toBe(3);
    await expectConsistent(clients, sku);
  });

  it('release twice releases once', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 4);
    await stock.hold(holdOf(sku, 2));
    await stock.hold(hold);
    expect(await stock.release(hold.reservationId, [sku], 'CANCELLED')).toEqual({ units: 4 });
    expect(await stock.release(hold.reservationId, [sku], 'CANCELLED')).toEqual({ units: 0 });
    expect(await stock.getStock(sku)).toMatchObject({ total: 10, reserved: 2, available: 8 });
    await expectConsistent(clients, sku);
  });

  it('a released reservation never holds again, even if its hold is retried late', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 4);
    await stock.hold(hold);
    await stock.release(hold.reservationId, [sku], 'EXPIRED');
    expect((await refusal(stock.hold(hold))).code).toBe('RESERVATION_ID_CONFLICT');
    expect((await stock.getStock(sku)).reserved).toBe(0);
  });

  it('commit twice deducts once, in Redis and in the ledger', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 3);
    await stock.hold(hold);
    const first = await stock.commit(hold.reservationId);
    const second = await stock.commit(hold.reservationId);
    expect(first.items).toEqual([{ sku, quantity: 3, committedQuantity: 3, returnedQuantity: 0 }]);
    expect(second).toEqual(first);
    expect(await stock.getStock(sku)).toMatchObject({ total: 7, reserved: 0, available: 7 });
    const sales = (await stock.getMovements(sku)).movements.filter((m) => m.kind === 'sale');
    expect(sales).toEqual([expect.objectContaining({ delta: -3, reservationId: hold.reservationId })]);
    await expectConsistent(clients, sku);
  });

  it('a commit retried after PostgreSQL committed but before Redis did still applies Redis once', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 2);
    await stock.hold(hold);
    const stockCommit = clients.redis.stockCommit.bind(clients.redis);
    const spy = jest.spyOn(clients.redis, 'stockCommit').mockRejectedValueOnce(new Error('connection lost'));
    await expect(stock.commit(hold.reservationId)).rejects.toThrow('connection lost');
    spy.mockImplementation(stockCommit);
    await stock.commit(hold.reservationId);
    spy.mockRestore();
    expect(await stock.getStock(sku)).toMatchObject({ total: 8, reserved: 0 });
    await expectConsistent(clients, sku);
  });
});

describe('all-or-nothing carts', () => {
  it('a cart with one short line holds nothing and names the short SKU and its available quantity', async () => {
    const [a, b, c] = [uniqueSku(), uniqueSku(), uniqueSku()];
    await newSku(clients, a, 5);
    await newSku(clients, b, 2);
    await newSku(clients, c, 5);
    const err = await refusal(
      stock.hold({
        reservationId: uniqueId(),
        expiresAt: expiresIn(),
        items: [
          { sku: a, quantity: 1 },
          { sku: b, quantity: 3 },
          { sku: c, quantity: 1 },
        ],
      }),
    );
    expect(err.code).toBe('INSUFFICIENT_STOCK');
    expect(err.details).toEqual({ sku: b, requested: 3, available: 2 });
    for (const sku of [a, b, c]) expect((await stock.getStock(sku)).reserved).toBe(0);
  });

  it('a cart whose lines all fit holds every line', async () => {
    const [a, b] = [uniqueSku(), uniqueSku()];
    await newSku(clients, a, 5);
    await newSku(clients, b, 2);
    const id = uniqueId();
    await stock.hold({
      reservationId: id,
      expiresAt: expiresIn(),
      items: [
        { sku: a, quantity: 5 },
        { sku: b, quantity: 2 },
      ],
    });
    expect((await stock.getStock(a)).available).toBe(0);
    expect((await stock.getStock(b)).available).toBe(0);
    expect((await stock.getHolds(a)).holds).toEqual([
      { reservationId: id, quantity: 5, expiresAt: expect.any(String) },
    ]);
  });

  it('a hold naming an unknown SKU is SKU_NOT_FOUND and holds nothing', async () => {
    const a = uniqueSku();
    await newSku(clients, a, 5);
    const err = await refusal(
      stock.hold({
        reservationId: uniqueId(),
        expiresAt: expiresIn(),
        items: [
          { sku: a, quantity: 1 },
          { sku: uniqueSku('NOPE'), quantity: 1 },
        ],
      }),
    );
    expect(err.code).toBe('SKU_NOT_FOUND');
    expect((await stock.getStock(a)).reserved).toBe(0);
  });
});

describe('partial commits', () => {
  it('a commit of less than held sells that and releases the rest', async () => {
    const [a, b] = [uniqueSku(), uniqueSku()];
    await newSku(clients, a, 10);
    await newSku(clients, b, 10);
    const id = uniqueId();
    await stock.hold({
      reservationId: id,
      expiresAt: expiresIn(),
      items: [
        { sku: a, quantity: 4 },
        { sku: b, quantity: 3 },
      ],
    });
    const { items } = await stock.commit(id, [{ sku: a, quantity: 1 }]);
    expect(items).toEqual(
      expect.arrayContaining([
        { sku: a, quantity: 4, committedQuantity: 1, returnedQuantity: 0 },
        { sku: b, quantity: 3, committedQuantity: 0, returnedQuantity: 0 },
      ]),
    );
    expect(await stock.getStock(a)).toMatchObject({ total: 9, reserved: 0, available: 9 });
    expect(await stock.getStock(b)).toMatchObject({ total: 10, reserved: 0, available: 10 });
    await expectConsistent(clients, a);
    await expectConsistent(clients, b);
  });

  it('a commit of more than held is refused and changes nothing', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 2);
    await stock.hold(hold);
    const err = await refusal(stock.commit(hold.reservationId, [{ sku, quantity: 3 }]));
    expect(err.code).toBe('QUANTITY_EXCEEDS_HOLD');
    expect(err.details).toEqual({ sku, requested: 3, held: 2 });
    expect(await stock.getStock(sku)).toMatchObject({ total: 10, reserved: 2 });
    expect((await stock.getMovements(sku)).movements.map((m) => m.kind)).toEqual(['initial']);
    await expectConsistent(clients, sku);
  });

  it('a commit after release is refused with the reservation status', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 2);
    await stock.hold(hold);
    await stock.release(hold.reservationId, [sku], 'EXPIRED');
    expect((await refusal(stock.commit(hold.reservationId))).code).toBe('RESERVATION_EXPIRED');
    expect(await stock.getStock(sku)).toMatchObject({ total: 10, reserved: 0 });
  });
});

describe('admin writes', () => {
  it('an adjustment below reserved is refused with WOULD_OVERSELL and changes nothing', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    await stock.hold(holdOf(sku, 6));
    const err = await refusal(stock.adjust(sku, { delta: -5, reason: 'damaged' }));
    expect(err.code).toBe('WOULD_OVERSELL');
    expect(await stock.getStock(sku)).toMatchObject({ total: 10, reserved: 6 });
    expect((await stock.getMovements(sku)).movements).toHaveLength(1);
    expect(await stock.adjust(sku, { delta: -4, reason: 'damaged' })).toMatchObject({
      total: 6,
      reserved: 6,
      available: 0,
    });
    await expectConsistent(clients, sku);
  });

  it('a restock with the same idempotency key twice applies once; another body under the key is refused', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 1);
    const key = uniqueId('key');
    const first = await stock.restock(sku, { quantity: 5, reason: 'truck' }, key);
    const second = await stock.restock(sku, { quantity: 5, reason: 'truck' }, key);
    expect(second).toEqual(first);
    expect((await stock.getStock(sku)).total).toBe(6);
    const err = await refusal(stock.restock(sku, { quantity: 6, reason: 'truck' }, key));
    expect(err.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await stock.getStock(sku)).total).toBe(6);
    await expectConsistent(clients, sku);
  });

  it('a return with the same idempotency key twice applies once, and never exceeds the sale', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 3);
    await stock.hold(hold);
    await stock.commit(hold.reservationId);
    const key = uniqueId('key');
    const body = { reservationId: hold.reservationId, items: [{ sku, quantity: 2 }], reason: 'unwanted' };
    expect(await stock.recordReturn(body, key)).toEqual({
      reservationId: hold.reservationId,
      items: [{ sku, returnedQuantity: 2 }],
    });
    await stock.recordReturn(body, key);
    expect((await stock.getStock(sku)).total).toBe(9);
    expect((await refusal(stock.recordReturn({ ...body, reason: 'other' }, key))).code).toBe('IDEMPOTENCY_KEY_REUSED');
    const exceeds = await refusal(
      stock.recordReturn({ reservationId: hold.reservationId, items: [{ sku, quantity: 2 }] }),
    );
    expect(exceeds.code).toBe('RETURN_EXCEEDS_SALE');
    expect(exceeds.details).toEqual({ sku, requested: 2, returnable: 1 });
    await stock.recordReturn({ reservationId: hold.reservationId, items: [{ sku, quantity: 1 }] });
    expect((await stock.getStock(sku)).total).toBe(10);
    await expectConsistent(clients, sku);
  });

  it('concurrent returns of the last sold unit: exactly one succeeds', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 1);
    await stock.hold(hold);
    await stock.commit(hold.reservationId);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () =>
        stock.recordReturn({ reservationId: hold.reservationId, items: [{ sku, quantity: 1 }] }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await stock.getStock(sku)).total).toBe(10);
    await expectConsistent(clients, sku);
  });

  it('a return for a reservation that is not committed is RESERVATION_NOT_COMMITTED', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 1);
    await stock.hold(hold);
    expect(
      (await refusal(stock.recordReturn({ reservationId: hold.reservationId, items: [{ sku, quantity: 1 }] }))).code,
    ).toBe('RESERVATION_NOT_COMMITTED');
  });

  it('creating a SKU twice is SKU_EXISTS; with the same idempotency key it answers the first result', async () => {
    const sku = uniqueSku();
    const key = uniqueId('key');
    const first = await stock.createSku({ sku, total: 3, name: 'Widget' }, key);
    expect(first).toEqual({
      sku,
      name: 'Widget',
      total: 3,
      reserved: 0,
      available: 3,
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    expect(await stock.createSku({ sku, total: 3, name: 'Widget' }, key)).toEqual(first);
    expect((await refusal(stock.createSku({ sku, total: 3, name: 'Widget' }))).code).toBe('SKU_EXISTS');
    expect((await stock.getMovements(sku)).movements).toEqual([expect.objectContaining({ kind: 'initial', delta: 3 })]);
  });

  it('the ledger refuses updates and deletes', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 3);
    await expect(clients.db.query('UPDATE stock_movements SET delta = 99 WHERE sku = $1', [sku])).rejects.toThrow(
      /append-only/,
    );
    await expect(clients.db.query('DELETE FROM stock_movements WHERE sku = $1', [sku])).rejects.toThrow(/append-only/);
  });
});

describe('Redis data loss', () => {
  // A Redis database of its own: wiping it must not disturb other suites' SKUs.
  const lossy = testStock(TEST_LOSSY_REDIS_URL);
  afterAll(() => lossy.close());

  it('after FLUSHDB holds are refused, not oversold, until the rebuild restores total and reserved', async () => {
    const sku = uniqueSku();
    await newSku(lossy, sku, 5);
    const live = holdOf(sku, 2);
    await lossy.stock.hold(live);
    const committed = holdOf(sku, 1);
    await lossy.stock.hold(committed);
    await lossy.stock.commit(committed.reservationId);

    await lossy.redis.flushdb();
    const refused = await refusal(lossy.stock.hold(holdOf(sku, 1)));
    expect(refused.code).toBe('UNAVAILABLE');
    expect((await refusal(lossy.stock.getStock(sku))).code).toBe('UNAVAILABLE');
    expect(await lossy.redis.exists(keys.stock(sku))).toBe(0);

    expect(await rebuildIfLost(lossy.stock, { settleMs: 0 })).toBeGreaterThanOrEqual(1);
    expect(await lossy.stock.getStock(sku)).toMatchObject({ total: 4, reserved: 2, available: 2 });
    expect(await rebuildIfLost(lossy.stock, { settleMs: 0 })).toBeUndefined();
    await expectConsistent(lossy, sku);
    // The held reservation can still be committed after the rebuild, and nothing oversells.
    await lossy.stock.commit(live.reservationId);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => lossy.stock.hold(holdOf(sku, 1))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    await expectConsistent(lossy, sku);
  });

  it('an unknown SKU is SKU_NOT_FOUND once counters are loaded', async () => {
    await rebuildIfLost(lossy.stock, { settleMs: 0 });
    expect((await refusal(lossy.stock.getStock(uniqueSku('NONE')))).code).toBe('SKU_NOT_FOUND');
  });
});

describe('availability of many SKUs', () => {
  it('lists known SKUs and names the missing ones', async () => {
    const [a, b] = [uniqueSku(), uniqueSku()];
    await newSku(clients, a, 5, 'A');
    await newSku(clients, b, 0, 'B');
    await rebuildIfLost(stock, { settleMs: 0 });
    const missing = uniqueSku('NONE');
    expect(await stock.getAvailability([a, missing, b])).toEqual({
      items: [
        { sku: a, name: 'A', total: 5, reserved: 0, available: 5, lowStockThreshold: null, maxPerCustomer: null },
        { sku: b, name: 'B', total: 0, reserved: 0, available: 0, lowStockThreshold: null, maxPerCustomer: null },
      ],
      missing: [missing],
    });
  });
});

describe('a reservation id used again', () => {
  it('with another cart is never "already held" for a line it never held: the new line is held, or the conflict is reported', async () => {
    const [a, b] = [uniqueSku(), uniqueSku()];
    await newSku(clients, a, 10);
    await newSku(clients, b, 10);
    const id = uniqueId();
    await stock.hold({ reservationId: id, expiresAt: expiresIn(), items: [{ sku: a, quantity: 2 }] });
    const again = {
      reservationId: id,
      expiresAt: expiresIn(),
      items: [
        { sku: a, quantity: 2 },
        { sku: b, quantity: 1 },
      ],
    };
    const outcome = await stock.hold(again).then(
      (held) => ({ held }),
      (err: unknown) => ({ refused: (err as StockholdError).code }),
    );
    if ('refused' in outcome) {
      expect(outcome.refused).toBe('RESERVATION_ID_CONFLICT');
      expect(await clients.redis.hexists(keys.holds(b), id)).toBe(0);
      expect((await stock.getStock(b)).reserved).toBe(0);
    } else {
      // Held: then B really is held for it (the old script answered "already held" and held nothing).
      expect(outcome.held).toEqual({ alreadyHeld: false });
      expect(await clients.redis.hget(keys.holds(b), id)).toBe('1');
      expect((await stock.getStock(b)).reserved).toBe(1);
    }
    // Line A is held once either way.
    expect(await clients.redis.hget(keys.holds(a), id)).toBe('2');
    expect((await stock.getStock(a)).reserved).toBe(2);
  });

  it('with another cart keeps Redis and PostgreSQL in agreement (a line held in Redis is a line of the reservation in PostgreSQL)', async () => {
    const [a, b] = [uniqueSku(), uniqueSku()];
    await newSku(clients, a, 10);
    await newSku(clients, b, 10);
    const id = uniqueId();
    await stock.hold({ reservationId: id, expiresAt: expiresIn(), items: [{ sku: a, quantity: 2 }] });
    await stock
      .hold({
        reservationId: id,
        expiresAt: expiresIn(),
        items: [
          { sku: a, quantity: 2 },
          { sku: b, quantity: 1 },
        ],
      })
      .catch(() => undefined);
    await expectConsistent(clients, a);
    await expectConsistent(clients, b);
  });

  it('with another quantity on a line it holds is RESERVATION_ID_CONFLICT and changes nothing', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const hold = holdOf(sku, 2);
    await stock.hold(hold);
    for (const quantity of [3, 1]) {
      const err = await refusal(stock.hold({ ...hold, items: [{ sku, quantity }] }));
      expect(err.code).toBe('RESERVATION_ID_CONFLICT');
      expect(err.details).toMatchObject({ reservationId: hold.reservationId, sku });
    }
    expect(await clients.redis.hget(keys.holds(sku), hold.reservationId)).toBe('2');
    expect(await stock.getStock(sku)).toMatchObject({ total: 10, reserved: 2 });
    await expectConsistent(clients, sku);
  });

  it("after a run gave up (REJECTED for run r1), only r1's late attempts are fenced: r1 is RESERVATION_ID_CONFLICT, r2 holds, and the REJECTED row is HELD again with r2's lines", async () => {
    const [a, b] = [uniqueSku(), uniqueSku()];
    await newSku(clients, a, 10);
    await newSku(clients, b, 10);
    const id = uniqueId();
    // Run r1's hold reached Redis, then the run gave up (the stores looked down) and released it.
    await stock.hold({ reservationId: id, run: 'r1', expiresAt: expiresIn(), items: [{ sku: a, quantity: 2 }] });
    expect(await stock.release(id, [a], 'REJECTED', 'hold failed: stores unavailable', 'r1')).toEqual({ units: 2 });
    const row = () =>
      clients.db.query<{ status: string; reason: string | null }>(
        'SELECT status, reason FROM reservations WHERE id = $1',
        [id],
      );
    expect((await row()).rows).toEqual([{ status: 'REJECTED', reason: 'hold failed: stores unavailable' }]);

    // A late attempt of r1 (its local activity still running when the run gave up) holds nothing.
    expect(
      (
        await refusal(
          stock.hold({ reservationId: id, run: 'r1', expiresAt: expiresIn(), items: [{ sku: a, quantity: 2 }] }),
        )
      ).code,
    ).toBe('RESERVATION_ID_CONFLICT');
    expect((await stock.getStock(a)).reserved).toBe(0);

    // The client's retry starts run r2, with another cart: it holds, in Redis and in PostgreSQL.
    const expiresAt = expiresIn();
    const items = [
      { sku: a, quantity: 1 },
      { sku: b, quantity: 3 },
    ];
    expect(await stock.hold({ reservationId: id, run: 'r2', expiresAt, items })).toEqual({ alreadyHeld: false });
    expect((await row()).rows).toEqual([{ status: 'HELD', reason: null }]);
    expect(await stock.ledger.reservations.itemsOf(clients.db, id)).toEqual(
      [
        { sku: a, quantity: 1, committedQuantity: 0, returnedQuantity: 0 },
        { sku: b, quantity: 3, committedQuantity: 0, returnedQuantity: 0 },
      ].sort((x, y) => x.sku.localeCompare(y.sku)),
    );
    expect(await stock.getStock(a)).toMatchObject({ total: 10, reserved: 1 });
    expect(await stock.getStock(b)).toMatchObject({ total: 10, reserved: 3 });
    await expectConsistent(clients, a);
    await expectConsistent(clients, b);

    // Once the reservation is final, every run is fenced off.
    await stock.release(id, [a, b], 'CANCELLED');
    expect((await refusal(stock.hold({ reservationId: id, run: 'r3', expiresAt: expiresIn(), items }))).code).toBe(
      'RESERVATION_ID_CONFLICT',
    );
    expect((await stock.getStock(b)).reserved).toBe(0);
  });
});

describe('Redis left behind a durable movement catches up once', () => {
  it('an Idempotency-Key repeat of a restock whose Redis step was lost applies it once, and a further repeat changes nothing', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 4);
    const key = uniqueId('key');
    const body = { quantity: 5, reason: 'truck' };
    const first = await stock.restock(sku, body, key);
    expect(first).toMatchObject({ total: 9 });
    const [restock] = (await stock.getMovements(sku)).movements.filter((m) => m.kind === 'restock');
    // The Redis step lost: total back where it was, and the movement not marked applied.
    await clients.redis.hincrby(keys.stock(sku), 'total', -5);
    expect(await clients.redis.hdel(keys.stock(sku), `m:${restock!.id}`)).toBe(1);
    expect((await stock.getStock(sku)).total).toBe(4);

    expect(await stock.restock(sku, body, key)).toEqual(first);
    expect(await stock.getStock(sku)).toMatchObject({ total: 9, reserved: 0 });
    expect(await stock.restock(sku, body, key)).toEqual(first);
    expect(await stock.getStock(sku)).toMatchObject({ total: 9, reserved: 0 });
    expect((await stock.getMovements(sku)).movements.filter((m) => m.kind === 'restock')).toHaveLength(1);
    await expectConsistent(clients, sku);
  });

  it("a commit whose hold Redis lost still lowers Redis's total by the sale, once; a commit after a rebuild that has the sale (mark >= it) does not lower it again", async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const other = holdOf(sku, 2);
    await stock.hold(other);
    const lost = holdOf(sku, 3);
    await stock.hold(lost);
    // Redis loses that hold (a failover to a replica that missed it): the hold and its units in reserved.
    await clients.redis.hdel(keys.holds(sku), lost.reservationId);
    await clients.redis.hincrby(keys.stock(sku), 'reserved', -3);
    expect(await stock.getStock(sku)).toMatchObject({ total: 10, reserved: 2 });

    expect((await stock.commit(lost.reservationId)).items).toEqual([
      { sku, quantity: 3, committedQuantity: 3, returnedQuantity: 0 },
    ]);
    expect(await stock.getStock(sku)).toMatchObject({ total: 7, reserved: 2 });
    await stock.commit(lost.reservationId); // a retry
    expect(await stock.getStock(sku)).toMatchObject({ total: 7, reserved: 2 });
    await expectConsistent(clients, sku);

    // A sale durable in PostgreSQL whose Redis step failed; then Redis loses the SKU and it is rebuilt
    // from PostgreSQL, sale included; then the commit is retried.
    const late = holdOf(sku, 1);
    await stock.hold(late);
    const spy = jest.spyOn(clients.redis, 'stockCommit').mockRejectedValueOnce(new Error('connection lost'));
    try {
      await expect(stock.commit(late.reservationId)).rejects.toThrow('connection lost');
    } finally {
      spy.mockRestore();
    }
    const [sale] = (await stock.getMovements(sku)).movements.filter(
      (m) => m.kind === 'sale' && m.reservationId === late.reservationId,
    );
    await clients.redis.del(keys.stock(sku), keys.holds(sku), keys.done(sku));
    const [snapshot] = await new ReconcilerStore(stock.db).snapshot([sku]);
    expect(BigInt(snapshot!.mark)).toBeGreaterThanOrEqual(BigInt(sale!.id));
    expect((await stock.counters.load(sku, snapshot!, 'missing')).loaded).toBe(true);
    expect(await stock.getStock(sku)).toMatchObject({ total: 6, reserved: 2 });

    await stock.commit(late.reservationId);
    expect(await stock.getStock(sku)).toMatchObject({ total: 6, reserved: 2 });
    await expectConsistent(clients, sku);
  });
});

describe('PostgreSQL has the last word on a sale', () => {
  it("a commit PostgreSQL's total cannot cover (lowered behind Redis's back) is INSUFFICIENT_STOCK and sells nothing", async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    const hold = holdOf(sku, 3);
    await stock.hold(hold);
    await clients.db.query('UPDATE skus SET total = 2 WHERE sku = $1', [sku]);

    const err = await refusal(stock.commit(hold.reservationId));
    expect(err.code).toBe('INSUFFICIENT_STOCK');
    expect(err.details).toEqual({ sku, requested: 3, available: 2 });
    expect((await stock.getMovements(sku)).movements.map((m) => m.kind)).toEqual(['initial']);
    const row = await clients.db.query('SELECT status FROM reservations WHERE id = $1', [hold.reservationId]);
    expect(row.rows).toEqual([{ status: 'HELD' }]);
    expect(await stock.ledger.reservations.itemsOf(clients.db, hold.reservationId)).toEqual([
      { sku, quantity: 3, committedQuantity: 0, returnedQuantity: 0 },
    ]);
    expect(await figures(clients, sku)).toMatchObject({ pgTotal: 2, redisTotal: 5, redisReserved: 3, sumOfHolds: 3 });
  });
});

describe('a release that meets a recorded sale', () => {
  it('reports what was sold, completes the sale in Redis, and releases nothing (the reservation stays COMMITTED)', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    const hold = holdOf(sku, 2);
    await stock.hold(hold);
    // The sale's PostgreSQL half only, as a commit whose workflow task Temporal never recorded leaves it.
    await stock.ledger.reservations.recordSale(hold.reservationId, undefined, 'pay-1');
    expect((await figures(clients, sku)).redisReserved).toBe(2);

    const released = await stock.release(hold.reservationId, [sku], 'EXPIRED');
    expect(released).toEqual({
      units: 0,
      committed: [{ sku, quantity: 2, committedQuantity: 2, returnedQuantity: 0 }],
    });
    expect(
      (await clients.db.query('SELECT status FROM reservations WHERE id = $1', [hold.reservationId])).rows,
    ).toEqual([{ status: 'COMMITTED' }]);
    expect(await stock.getStock(sku)).toMatchObject({ total: 3, reserved: 0, available: 3 });
    await expectConsistent(clients, sku);
  });
});
