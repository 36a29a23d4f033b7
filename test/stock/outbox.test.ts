/**
 * The transactional outbox (docs/DESIGN.md "Events (outbox)") on real stores: every ledger movement
 * writes `stock.changed`, every reservation transition its event, threshold crossings fire once
 * each, and an event exists only for a change that committed, once, in commit order per SKU.
 */
import type { EventType, StockholdEvent } from '../../src/domain/events';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expiresIn, holdOf, newSku, refusal, testStock } from '../helpers/stock';

const clients = testStock();
const { stock } = clients;

afterAll(() => clients.close());

async function eventsOf(sku: string): Promise<StockholdEvent[]> {
  return stock.events({ sku, limit: 1000 });
}

async function typesOf(sku: string): Promise<EventType[]> {
  return (await eventsOf(sku)).map((e) => e.type);
}

/** The events of `sku` written by `change` (those after the last one before it). */
async function eventsDuring(sku: string, change: () => Promise<unknown>): Promise<StockholdEvent[]> {
  const last = (await eventsOf(sku)).at(-1)?.seq ?? '0';
  await change();
  return stock.events({ sku, afterSeq: last, limit: 1000 });
}

async function pgReserved(sku: string): Promise<{ column: number; held: number }> {
  const row = await clients.db.query<{ reserved: string; held: string }>(
    `SELECT s.reserved, (SELECT COALESCE(sum(l.quantity), 0) FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
                          WHERE l.sku = s.sku AND r.status = 'HELD') AS held
       FROM skus s WHERE s.sku = $1`,
    [sku],
  );
  return { column: Number(row.rows[0]!.reserved), held: Number(row.rows[0]!.held) };
}

describe('stock.changed for every ledger movement', () => {
  it('creating a SKU emits stock.changed (initial) with its view, and no threshold event', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 0, 'widget');
    const events = await eventsOf(sku);
    expect(events).toEqual([
      {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        seq: expect.any(String),
        type: 'stock.changed',
        skus: [sku],
        createdAt: expect.any(String),
        data: {
          sku,
          name: 'widget',
          total: 0,
          reserved: 0,
          available: 0,
          lowStockThreshold: null,
          maxPerCustomer: null,
          movement: {
            id: expect.stringMatching(/^\d+$/),
            kind: 'initial',
            delta: 0,
            reason: 'created',
            at: expect.any(String),
          },
        },
      },
    ]);
  });

  it('restock, adjustment, sale and return each emit stock.changed with the view after it and the movement', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const restocked = await eventsDuring(sku, () => stock.restock(sku, { quantity: 5, reason: 'truck' }));
    expect(restocked).toEqual([
      expect.objectContaining({
        type: 'stock.changed',
        data: expect.objectContaining({
          total: 15,
          reserved: 0,
          available: 15,
          movement: expect.objectContaining({ kind: 'restock', delta: 5, reason: 'truck' }),
        }),
      }),
    ]);
    const adjusted = await eventsDuring(sku, () => stock.adjust(sku, { delta: -2, reason: 'broken' }));
    expect(adjusted.map((e) => e.data)).toEqual([
      expect.objectContaining({
        total: 13,
        movement: expect.objectContaining({ kind: 'adjustment', delta: -2, reason: 'broken' }),
      }),
    ]);

    const hold = holdOf(sku, 4);
    await stock.hold(hold);
    const committed = await eventsDuring(sku, () => stock.commit(hold.reservationId));
    expect(committed.map((e) => e.type)).toEqual(['stock.changed', 'reservation.committed']);
    expect(committed[0]!.data).toEqual(
      expect.objectContaining({
        total: 9,
        reserved: 0,
        available: 9,
        movement: expect.objectContaining({ kind: 'sale', delta: -4, reservationId: hold.reservationId }),
      }),
    );
    const ledgerSale = (await stock.getMovements(sku)).movements.find((m) => m.kind === 'sale')!;
    expect((committed[0]!.data as { movement: unknown }).movement).toEqual(ledgerSale);

    const returned = await eventsDuring(sku, () =>
      stock.recordReturn({ reservationId: hold.reservationId, items: [{ sku, quantity: 1 }], reason: 'too small' }),
    );
    expect(returned.map((e) => e.data)).toEqual([
      expect.objectContaining({
        total: 10,
        available: 10,
        movement: expect.objectContaining({
          kind: 'return',
          delta: 1,
          reservationId: hold.reservationId,
          reason: 'too small',
        }),
      }),
    ]);
    // One stock.changed per movement of the ledger, movement for movement.
    const changed = (await eventsOf(sku))
      .filter((e) => e.type === 'stock.changed')
      .map((e) => (e.data as { movement: { id: string } }).movement.id);
    expect(changed).toEqual((await stock.getMovements(sku)).movements.map((m) => m.id).reverse());
    await expectConsistent(clients, sku);
  });
});

describe('reservation events', () => {
  it('held, committed, cancelled and expired carry the reservation view after the change', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 100);
    const [a, b, c] = [holdOf(sku, 1), holdOf(sku, 2), holdOf(sku, 3)];
    const held = await eventsDuring(sku, () => stock.hold({ ...a, customerId: 'cust-1' }));
    expect(held).toEqual([
      expect.objectContaining({
        type: 'reservation.held',
        skus: [sku],
        data: expect.objectContaining({
          reservationId: a.reservationId,
          status: 'HELD',
          customerId: 'cust-1',
          items: [{ sku, quantity: 1, committedQuantity: 0, returnedQuantity: 0 }],
        }),
      }),
    ]);
    await stock.hold(b);
    await stock.hold(c);
    const committed = await eventsDuring(sku, () => stock.commit(a.reservationId, undefined, 'pay-1'));
    expect(committed.at(-1)).toEqual(
      expect.objectContaining({
        type: 'reservation.committed',
        data: expect.objectContaining({
          status: 'COMMITTED',
          items: [expect.objectContaining({ committedQuantity: 1 })],
        }),
      }),
    );
    const cancelled = await eventsDuring(sku, () =>
      stock.release(b.reservationId, [sku], 'CANCELLED', 'changed my mind'),
    );
    expect(cancelled).toEqual([
      expect.objectContaining({
        type: 'reservation.cancelled',
        data: expect.objectContaining({ reservationId: b.reservationId, status: 'CANCELLED' }),
      }),
    ]);
    const expired = await eventsDuring(sku, () => stock.release(c.reservationId, [sku], 'EXPIRED'));
    expect(expired).toEqual([
      expect.objectContaining({
        type: 'reservation.expired',
        data: expect.objectContaining({ reservationId: c.reservationId, status: 'EXPIRED' }),
      }),
    ]);
    expect(await pgReserved(sku)).toEqual({ column: 0, held: 0 });
  });

  it("a multi-SKU reservation's event belongs to every SKU of its cart", async () => {
    const [x, y] = [uniqueSku(), uniqueSku()].sort() as [string, string];
    await newSku(clients, x, 5);
    await newSku(clients, y, 5);
    const id = uniqueId();
    await stock.hold({
      reservationId: id,
      expiresAt: expiresIn(),
      items: [
        { sku: y, quantity: 1 },
        { sku: x, quantity: 2 },
      ],
    });
    await stock.commit(id);
    for (const sku of [x, y]) {
      const reservationEvents = (await eventsOf(sku)).filter((e) => e.type.startsWith('reservation.'));
      expect(reservationEvents.map((e) => [e.type, e.skus])).toEqual([
        ['reservation.held', [x, y]],
        ['reservation.committed', [x, y]],
      ]);
    }
    // The commit's stock.changed events are one per SKU, each its own.
    const sales = (
      await stock.events({ limit: 1000, afterSeq: (await eventsOf(x)).find((e) => e.type === 'reservation.held')!.seq })
    ).filter((e) => e.type === 'stock.changed' && [x, y].includes(e.skus[0]!));
    expect(sales.map((e) => e.skus)).toEqual([[x], [y]]);
  });
});

describe('threshold events fire once per crossing', () => {
  it('the crossing rules (stockhold_threshold_crossings, which every writer of events calls)', async () => {
    const crossings = async (before: number, after: number, threshold: number | null) =>
      (
        await clients.db.query<{ types: string[] }>('SELECT stockhold_threshold_crossings($1, $2, $3) AS types', [
          before,
          after,
          threshold,
        ])
      ).rows[0]!.types;
    expect(await crossings(5, 3, 3)).toEqual(['stock.low']);
    expect(await crossings(3, 2, 3)).toEqual([]);
    expect(await crossings(5, 0, 3)).toEqual(['stock.low', 'stock.sold_out']);
    expect(await crossings(2, 0, 3)).toEqual(['stock.sold_out']);
    expect(await crossings(0, 2, 3)).toEqual(['stock.back_in_stock']);
    expect(await crossings(0, 0, 3)).toEqual([]);
    expect(await crossings(5, 0, null)).toEqual(['stock.sold_out']);
    expect(await crossings(2, 5, 3)).toEqual([]);
    expect(await crossings(-1, 0, 3)).toEqual([]);
  });

  it('holds, releases, restocks and adjustments cross the threshold and 0 once each', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    expect(await eventsDuring(sku, () => stock.updateSku(sku, { lowStockThreshold: 3 }))).toEqual([]); // a PATCH emits nothing
    const step = async (change: () => Promise<unknown>) => (await eventsDuring(sku, change)).map((e) => e.type);

    expect(await step(() => stock.hold(holdOf(sku, 5)))).toEqual(['reservation.held']); // 10 → 5
    const two = holdOf(sku, 2);
    expect(await step(() => stock.hold(two))).toEqual(['reservation.held', 'stock.low']); // 5 → 3
    const one = holdOf(sku, 1);
    expect(await step(() => stock.hold(one))).toEqual(['reservation.held']); // 3 → 2: still low, no second stock.low
    expect(await step(() => stock.release(one.reservationId, [sku], 'CANCELLED'))).toEqual(['reservation.cancelled']); // 2 → 3
    const three = holdOf(sku, 3);
    expect(await step(() => stock.hold(three))).toEqual(['reservation.held', 'stock.sold_out']); // 3 → 0
    expect(await step(() => stock.release(three.reservationId, [sku], 'EXPIRED'))).toEqual([
      'reservation.expired',
      'stock.back_in_stock',
    ]); // 0 → 3
    expect(await step(() => stock.release(two.reservationId, [sku], 'CANCELLED'))).toEqual(['reservation.cancelled']); // 3 → 5, above again
    expect(await step(() => stock.adjust(sku, { delta: -5, reason: 'damaged' }))).toEqual([
      'stock.changed',
      'stock.low',
      'stock.sold_out',
    ]); // 5 → 0 straight
    const backEvents = await eventsDuring(sku, () => stock.restock(sku, { quantity: 20 }));
    expect(backEvents.map((e) => e.type)).toEqual(['stock.changed', 'stock.back_in_stock']); // 0 → 20
    expect(backEvents[1]!.data).toEqual(
      expect.objectContaining({ sku, total: 25, reserved: 5, available: 20, lowStockThreshold: 3 }),
    );
    expect(await pgReserved(sku)).toEqual({ column: 5, held: 5 });
    await expectConsistent(clients, sku);
  });

  it('a partial commit that gives back units can bring a SKU back in stock', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 4);
    const hold = holdOf(sku, 4);
    await stock.hold(hold);
    const events = await eventsDuring(sku, () => stock.commit(hold.reservationId, [{ sku, quantity: 1 }]));
    expect(events.map((e) => e.type)).toEqual(['stock.changed', 'reservation.committed', 'stock.back_in_stock']);
    expect(events[2]!.data).toEqual(expect.objectContaining({ total: 3, reserved: 0, available: 3 }));
  });
});

describe('an event exists only for a change that committed, once', () => {
  it('a refused adjustment writes no event', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    await stock.hold(holdOf(sku, 6));
    // Redis refuses inside the transaction (10 - 5 < 6 held): the movement and its events roll back.
    expect(
      await eventsDuring(sku, async () =>
        expect((await refusal(stock.adjust(sku, { delta: -5, reason: 'x' }))).code).toBe('WOULD_OVERSELL'),
      ),
    ).toEqual([]);
    expect(
      await eventsDuring(sku, async () =>
        expect((await refusal(stock.adjust(sku, { delta: -11, reason: 'x' }))).code).toBe('WOULD_OVERSELL'),
      ),
    ).toEqual([]);
  });

  it('a return refused on its second line leaves no event of its first', async () => {
    const [x, y] = [uniqueSku(), uniqueSku()];
    await newSku(clients, x, 5);
    await newSku(clients, y, 5);
    const id = uniqueId();
    await stock.hold({
      reservationId: id,
      expiresAt: expiresIn(),
      items: [
        { sku: x, quantity: 1 },
        { sku: y, quantity: 1 },
      ],
    });
    await stock.commit(id);
    const during = await eventsDuring(x, async () => {
      const err = await refusal(
        stock.recordReturn({
          reservationId: id,
          items: [
            { sku: x, quantity: 1 },
            { sku: y, quantity: 2 },
          ],
        }),
      );
      expect(err.code).toBe('RETURN_EXCEEDS_SALE');
    });
    expect(during).toEqual([]);
    expect((await stock.getMovements(x)).movements.filter((m) => m.kind === 'return')).toEqual([]);
  });

  it('a transaction that fails after its change writes no event', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    const hold = holdOf(sku, 2);
    await stock.hold(hold);
    // The status update fails (the reason is not text PostgreSQL can store): the whole release rolls back.
    const during = await eventsDuring(sku, () =>
      expect(
        stock.ledger.reservations.recordRelease(hold.reservationId, 'CANCELLED', 'nul \u0000 byte'),
      ).rejects.toThrow(),
    );
    expect(during).toEqual([]);
    expect(await pgReserved(sku)).toEqual({ column: 2, held: 2 });
  });

  it('retried holds, commits, releases and keyed restocks write their events once', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const a = holdOf(sku, 1);
    const b = holdOf(sku, 1);
    await stock.hold(a);
    await stock.hold(a);
    await stock.commit(a.reservationId);
    await stock.commit(a.reservationId);
    await stock.hold(b);
    await stock.release(b.reservationId, [sku], 'CANCELLED');
    await stock.release(b.reservationId, [sku], 'CANCELLED');
    await stock.release(b.reservationId, [sku], 'EXPIRED');
    await stock.restock(sku, { quantity: 3 }, `key-${uniqueId()}`).then(async (first) => expect(first).toBeDefined());
    const key = `key-${uniqueId()}`;
    await stock.restock(sku, { quantity: 2 }, key);
    await stock.restock(sku, { quantity: 2 }, key);
    expect(await typesOf(sku)).toEqual([
      'stock.changed', // initial
      'reservation.held',
      'stock.changed', // sale
      'reservation.committed',
      'reservation.held',
      'reservation.cancelled',
      'stock.changed', // restock 3
      'stock.changed', // restock 2, once
    ]);
    expect(await pgReserved(sku)).toEqual({ column: 0, held: 0 });
  });
});

describe('per-SKU order', () => {
  it('concurrent changes of one SKU: along seq (the commit order), createdAt never decreases and movement ids increase', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 1000);
    await stock.updateSku(sku, { lowStockThreshold: 500 });
    const holds = Array.from({ length: 40 }, () => holdOf(sku, 15));
    await Promise.all([
      ...holds.map((h) => stock.hold(h)),
      ...Array.from({ length: 20 }, () => stock.restock(sku, { quantity: 1 })),
      ...Array.from({ length: 10 }, () => stock.adjust(sku, { delta: -1, reason: 'count' })),
    ]);
    await Promise.all(holds.slice(0, 20).map((h) => stock.commit(h.reservationId)));
    const events = await eventsOf(sku);
    expect(events.filter((e) => e.type === 'reservation.held')).toHaveLength(40);
    expect(events.filter((e) => e.type === 'stock.low')).toHaveLength(1);
    // The events come back ordered by seq (the query's ORDER BY), so seq itself proves nothing
    // here; what the row lock guarantees is that the clock read at each insert follows it.
    for (let i = 1; i < events.length; i++) {
      expect(Date.parse(events[i]!.createdAt)).toBeGreaterThanOrEqual(Date.parse(events[i - 1]!.createdAt));
    }
    // Movement ids are taken under the row lock too: in seq order they increase (the commit order).
    const movementIds = events
      .filter((e) => e.type === 'stock.changed')
      .map((e) => BigInt((e.data as { movement: { id: string } }).movement.id));
    expect(movementIds).toEqual([...movementIds].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0)));
    // The last stock view written is the SKU's final state.
    const last = events.filter((e) => e.type === 'stock.changed').at(-1)!.data as { total: number; reserved: number };
    expect(last).toEqual(expect.objectContaining({ total: 1000 + 20 - 10 - 300, reserved: 300 }));
    expect(await pgReserved(sku)).toEqual({ column: 300, held: 300 });
    await expectConsistent(clients, sku);
  });
});

describe('threshold events at a location (contract v3)', () => {
  it('carry the locationId of the movement that crossed the threshold, and none when a hold crossed it or the movement was at default', async () => {
    const east = uniqueSku('OE');
    await stock.createLocation({ locationId: east, name: east });
    const sku = uniqueSku('OL');
    await stock.createSku({ sku, locations: { default: 2, [east]: 4 } });
    await stock.updateSku(sku, { lowStockThreshold: 3 });
    const thresholds = (events: StockholdEvent[]) =>
      events
        .filter((e) => e.type.startsWith('stock.') && e.type !== 'stock.changed')
        .map((e) => ({ type: e.type, locationId: (e.data as { locationId?: string }).locationId }));

    // A count at east takes available from 6 to 3: stock.low, caused by east's movement.
    const low = await eventsDuring(sku, () => stock.adjust(sku, { delta: -3, reason: 'count', locationId: east }));
    expect(thresholds(low)).toEqual([{ type: 'stock.low', locationId: east }]);
    // A hold of the last 3 sells it out: no movement, so no location.
    const id = uniqueId();
    const out = await eventsDuring(sku, () =>
      stock.hold({ reservationId: id, items: [{ sku, quantity: 3 }], expiresAt: expiresIn() }),
    );
    expect(thresholds(out)).toEqual([{ type: 'stock.sold_out', locationId: undefined }]);
    // A restock at east brings it back: east's.
    const back = await eventsDuring(sku, () => stock.restock(sku, { quantity: 5, locationId: east }));
    expect(thresholds(back)).toEqual([{ type: 'stock.back_in_stock', locationId: east }]);
    await stock.release(id, [sku], 'CANCELLED');
    // Out again by a count at east (available 8 -> 6 at default, crossing nothing, then 6 -> 0).
    const none = await eventsDuring(sku, () =>
      stock.adjust(sku, { delta: -2, reason: 'count', locationId: 'default' }),
    );
    expect(thresholds(none)).toEqual([]);
    const gone = await eventsDuring(sku, () => stock.adjust(sku, { delta: -6, reason: 'count', locationId: east }));
    expect(thresholds(gone)).toEqual([
      { type: 'stock.low', locationId: east },
      { type: 'stock.sold_out', locationId: east },
    ]);
    // A SKU only ever at `default`, as in v2: no locationId at all.
    const v2 = uniqueSku('OV');
    await stock.createSku({ sku: v2, total: 4 });
    await stock.updateSku(v2, { lowStockThreshold: 2 });
    const plain = await eventsDuring(v2, () => stock.adjust(v2, { delta: -3, reason: 'count' }));
    expect(thresholds(plain)).toEqual([{ type: 'stock.low', locationId: undefined }]);
    expect(plain.every((e) => !('locationId' in e.data))).toBe(true);
    await expectConsistent(clients, sku);
  });
});
