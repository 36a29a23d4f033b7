/**
 * The outbox end to end: a reservation made, committed and partly returned through the HTTP API
 * (Temporal workflow, Redis, PostgreSQL) leaves exactly its events in `events`, in order.
 */
import { uniqueId, uniqueSku } from '../helpers/env';
import { startStack, type Stack } from '../helpers/stack';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

it('reserve → commit → return through the API writes its events in order, each once', async () => {
  const sku = uniqueSku('EVT');
  expect((await stack.admin('POST', '/v1/skus', { body: { sku, total: 3, name: 'boots' } })).status).toBe(201);
  expect((await stack.admin('PATCH', `/v1/skus/${sku}`, { body: { lowStockThreshold: 1 } })).status).toBe(200);

  const reservationId = uniqueId('res');
  const reserved = await stack.api('POST', '/v1/reservations', {
    body: { reservationId, items: [{ sku, quantity: 2 }] },
  });
  expect(reserved.status).toBe(201);
  const committed = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, {
    body: { paymentId: 'pay-evt' },
  });
  expect(committed.status).toBe(200);
  // A client resending its commit changes nothing, events included.
  expect(
    (await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: { paymentId: 'pay-evt' } })).status,
  ).toBe(200);
  const returned = await stack.admin('POST', '/v1/returns', { body: { reservationId, items: [{ sku, quantity: 1 }] } });
  expect(returned.status).toBe(200);

  const events = await stack.stock.stock.events({ sku, limit: 100 });
  expect(events.map((e) => [e.type, (e.data as { available?: number }).available ?? null])).toEqual([
    ['stock.changed', 3], // initial; the PATCH writes nothing
    ['reservation.held', null],
    ['stock.low', 1], // 3 → 1 available: at the threshold
    ['stock.changed', 1], // the sale
    ['reservation.committed', null],
    ['stock.changed', 2], // the return
  ]);
  expect(events[1]!.data).toEqual(
    expect.objectContaining({ reservationId, status: 'HELD', workflowId: `reservation-${reservationId}` }),
  );
  expect(events[4]!.data).toEqual(
    expect.objectContaining({
      reservationId,
      status: 'COMMITTED',
      items: [expect.objectContaining({ sku, committedQuantity: 2 })],
    }),
  );
  expect(events.map((e) => (e.data as { movement?: { kind: string } }).movement?.kind ?? null)).toEqual([
    'initial',
    null,
    null,
    'sale',
    null,
    'return',
  ]);
  for (let i = 1; i < events.length; i++)
    expect(Date.parse(events[i]!.createdAt)).toBeGreaterThanOrEqual(Date.parse(events[i - 1]!.createdAt));
});
