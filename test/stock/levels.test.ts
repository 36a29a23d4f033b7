/**
 * Stock per location in PostgreSQL (migrations/1765600000000_stock-levels.sql), while every SKU is
 * stocked at `default` alone: each SKU's level there follows its ledger, each hold is allocated
 * there whole and leaves with its release or sale, and the level's own check refuses a hold that
 * would take the location's `reserved` above its `total`, even where the SKU's row would allow it.
 */
import { uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expectLevelsConsistent, expiresIn, newSku, refusal, testStock } from '../helpers/stock';

const clients = testStock();
const { stock, db } = clients;

afterAll(() => clients.close());

async function levelsOf(sku: string) {
  const { rows } = await db.query<{ location_id: string; total: string; reserved: string }>(
    'SELECT location_id, total, reserved FROM stock_levels WHERE sku = $1 ORDER BY location_id',
    [sku],
  );
  return rows.map((r) => ({ locationId: r.location_id, total: Number(r.total), reserved: Number(r.reserved) }));
}

async function allocationsOf(reservationId: string) {
  const { rows } = await db.query(
    `SELECT sku, location_id AS "locationId", position, quantity, committed_quantity AS "committedQuantity"
       FROM reservation_allocations WHERE reservation_id = $1 ORDER BY sku, position`,
    [reservationId],
  );
  return rows;
}

test('a new SKU has one level, at default, with its stock; restocks, adjustments and returns move it', async () => {
  const sku = uniqueSku('LV');
  await newSku(clients, sku, 7);
  expect(await levelsOf(sku)).toEqual([{ locationId: 'default', total: 7, reserved: 0 }]);
  await stock.restock(sku, { quantity: 5 });
  await stock.adjust(sku, { delta: -2, reason: 'damaged' });
  expect(await levelsOf(sku)).toEqual([{ locationId: 'default', total: 10, reserved: 0 }]);
  const id = uniqueId();
  await stock.hold({ reservationId: id, items: [{ sku, quantity: 3 }], expiresAt: expiresIn() });
  await stock.commit(id);
  await stock.recordReturn({ reservationId: id, items: [{ sku, quantity: 1 }] });
  expect(await levelsOf(sku)).toEqual([{ locationId: 'default', total: 8, reserved: 0 }]);
  const moves = await db.query('SELECT DISTINCT location_id FROM stock_movements WHERE sku = $1', [sku]);
  expect(moves.rows).toEqual([{ location_id: 'default' }]);
  await expectConsistent(clients, sku);
});

test('a hold is allocated whole at default; a partial sale sells from it and the rest leaves reserved', async () => {
  const [a, b] = [uniqueSku('LA'), uniqueSku('LB')];
  await newSku(clients, a, 5);
  await newSku(clients, b, 5);
  const id = uniqueId();
  await stock.hold({
    reservationId: id,
    items: [
      { sku: a, quantity: 3 },
      { sku: b, quantity: 2 },
    ],
    expiresAt: expiresIn(),
  });
  expect(await allocationsOf(id)).toEqual([
    { sku: a, locationId: 'default', position: 1, quantity: 3, committedQuantity: 0 },
    { sku: b, locationId: 'default', position: 1, quantity: 2, committedQuantity: 0 },
  ]);
  expect(await levelsOf(a)).toEqual([{ locationId: 'default', total: 5, reserved: 3 }]);
  await expectLevelsConsistent(clients, a);

  await stock.commit(id, [{ sku: a, quantity: 2 }]);
  expect(await allocationsOf(id)).toEqual([
    { sku: a, locationId: 'default', position: 1, quantity: 3, committedQuantity: 2 },
    { sku: b, locationId: 'default', position: 1, quantity: 2, committedQuantity: 0 },
  ]);
  expect(await levelsOf(a)).toEqual([{ locationId: 'default', total: 3, reserved: 0 }]);
  expect(await levelsOf(b)).toEqual([{ locationId: 'default', total: 5, reserved: 0 }]);
  await expectConsistent(clients, a);
  await expectConsistent(clients, b);
});

test('a release gives each allocation back to its level; a repeat changes nothing', async () => {
  const sku = uniqueSku('LR');
  await newSku(clients, sku, 4);
  const id = uniqueId();
  await stock.hold({ reservationId: id, items: [{ sku, quantity: 4 }], expiresAt: expiresIn() });
  expect(await levelsOf(sku)).toEqual([{ locationId: 'default', total: 4, reserved: 4 }]);
  await stock.release(id, [sku], 'CANCELLED');
  await stock.release(id, [sku], 'CANCELLED');
  expect(await levelsOf(sku)).toEqual([{ locationId: 'default', total: 4, reserved: 0 }]);
  await expectConsistent(clients, sku);
});

test("PostgreSQL refuses a hold its location's level cannot back, whatever the SKU's row says, and writes nothing", async () => {
  const sku = uniqueSku('LP');
  await newSku(clients, sku, 5);
  // A level whose reserved is ahead of the SKU's row (as a location's holds would be once a SKU
  // is stocked at several): 4 of default's 5 units are taken there, none by the row's count.
  await db.query(`UPDATE stock_levels SET reserved = 4 WHERE sku = $1 AND location_id = 'default'`, [sku]);
  try {
    const id = uniqueId();
    const refused = await refusal(
      stock.hold({ reservationId: id, items: [{ sku, quantity: 2 }], expiresAt: expiresIn() }),
    );
    expect({ code: refused.code, details: refused.details }).toMatchObject({
      code: 'INSUFFICIENT_STOCK',
      details: { sku, requested: 2, available: 1 },
    });
    expect(await allocationsOf(id)).toEqual([]);
    expect((await db.query('SELECT 1 FROM reservations WHERE id = $1 AND status = $2', [id, 'HELD'])).rowCount).toBe(0);
    const row = await db.query('SELECT reserved FROM skus WHERE sku = $1', [sku]);
    expect(Number(row.rows[0].reserved)).toBe(0);
  } finally {
    await db.query(`UPDATE stock_levels SET reserved = 0 WHERE sku = $1 AND location_id = 'default'`, [sku]);
  }
  await expectConsistent(clients, sku);
});
