/**
 * Per-customer limits through the whole service: the Express API, a Temporal dev server with a
 * worker, real Redis and PostgreSQL. The acceptance test: a 10,000-request storm where each
 * of 2,000 customers sends 5 requests for a SKU limited to 1 per customer gives no customer more
 * than 1 unit. Then the refusals the Lua hold gives through the workflow (the API's pre-check
 * bypassed), and bought units counting against the limit.
 */
import { StockStore } from '../../src/stock';
import { keys } from '../../src/stock';
import { uniqueId, uniqueSku } from '../helpers/env';
import { startStack, type ApiAnswer, type Stack } from '../helpers/stack';
import { expectConsistent } from '../helpers/stock';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

async function limitedSku(total: number, maxPerCustomer: number): Promise<string> {
  const sku = uniqueSku('DROP');
  expect((await stack.admin('POST', '/v1/skus', { body: { sku, total, name: `drop ${sku}` } })).status).toBe(201);
  const patched = await stack.admin('PATCH', `/v1/skus/${sku}`, { body: { maxPerCustomer } });
  expect({ status: patched.status, maxPerCustomer: patched.body?.maxPerCustomer }).toEqual({ status: 200, maxPerCustomer });
  return sku;
}

const reserve = (body: Record<string, unknown>) => stack.api('POST', '/v1/reservations', { body });

function expectError(res: ApiAnswer, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
}

describe('a drop limited to 1 per customer', () => {
  it('a storm of 10,000 requests, 5 from each of 2,000 customers, gives no customer more than 1 unit', async () => {
    // 200 units: the first wave's customers race their 5 requests each for units that are there,
    // so only the limit stops a second unit; later waves meet a sold-out drop. (Each unit held is
    // a workflow: 200 keep the test quick on a busy 2-core machine.)
    const sku = await limitedSku(200, 1);
    const customers = Array.from({ length: 2_000 }, (_, i) => `buyer-${i}-${uniqueId('c')}`);
    const answers: { customerId: string; res: ApiAnswer }[] = [];
    // Waves of 500 customers (2,500 requests in flight at once, each customer's 5 together), so
    // client and server sockets stay within the process's file limit.
    for (let from = 0; from < customers.length; from += 500) {
      const wave = customers.slice(from, from + 500).flatMap((customerId) =>
        Array.from({ length: 5 }, () => reserve({ items: [{ sku, quantity: 1 }], customerId }).then((res) => ({ customerId, res }))),
      );
      answers.push(...(await Promise.all(wave)));
    }

    const held = answers.filter((a) => a.res.status === 201);
    const holders = new Set(held.map((a) => a.customerId));
    const outcome = (a: (typeof answers)[number]) => (a.res.status === 201 ? 'HELD' : `${a.res.status} ${a.res.body?.error?.code}`);
    const tally = (list: typeof answers) => list.reduce<Record<string, number>>((t, a) => ({ ...t, [outcome(a)]: (t[outcome(a)] ?? 0) + 1 }), {});
    expect({ held: held.length, holders: holders.size, all: tally(answers) }).toMatchObject({ held: 200, holders: 200 });
    // A holder's other 4 requests are refused for the limit; everyone else's for the stock.
    expect(tally(answers.filter((a) => holders.has(a.customerId)))).toEqual({ HELD: 200, '409 CUSTOMER_LIMIT_EXCEEDED': 800 });
    expect(tally(answers.filter((a) => !holders.has(a.customerId)))).toEqual({ '409 INSUFFICIENT_STOCK': 9_000 });
    const limited = answers.find((a) => a.res.body?.error?.code === 'CUSTOMER_LIMIT_EXCEEDED')!;
    expect(limited.res.body.error.details).toEqual({ sku, customerId: limited.customerId, limit: 1, held: 1, bought: 0, requested: 1 });

    // Both stores agree: one HELD unit per customer, and Redis counts each customer's one unit.
    const rows = await stack.stock.db.query<{ customer_id: string; units: string }>(
      `SELECT r.customer_id, sum(l.quantity) AS units FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id
        WHERE l.sku = $1 AND r.status = 'HELD' GROUP BY r.customer_id`,
      [sku],
    );
    expect(rows.rows).toHaveLength(200);
    expect(rows.rows.every((r) => Number(r.units) === 1)).toBe(true);
    const counts = await stack.stock.redis.hgetall(keys.customers(sku));
    expect(customers.every((c) => counts[`h:${c}`] === (holders.has(c) ? '1' : undefined))).toBe(true);
    expect((await stack.api('GET', `/v1/skus/${sku}`)).body).toMatchObject({ total: 200, reserved: 200, available: 0, maxPerCustomer: 1 });
    await expectConsistent(stack.stock, sku);
  });
});

describe('refusals through the workflow (the pre-check bypassed: the Lua hold decides)', () => {
  /** Lets every cart past the API's Redis pre-check and per-customer admission, for one call. */
  async function withoutPrecheck<T>(call: () => Promise<T>): Promise<T> {
    const spy = jest.spyOn(StockStore.prototype, 'precheck').mockImplementation(async (items) => ({ repeat: false, available: items.map(() => 1e9), allowance: [] }));
    try {
      return await call();
    } finally {
      spy.mockRestore();
    }
  }

  it('409 CUSTOMER_LIMIT_EXCEEDED with its details; the reservation is REJECTED and a repeat gets the same refusal', async () => {
    const sku = await limitedSku(10, 2);
    expect((await reserve({ items: [{ sku, quantity: 2 }], customerId: 'quinn' })).status).toBe(201);
    const reservationId = uniqueId('lim');
    const body = { reservationId, items: [{ sku, quantity: 1 }], customerId: 'quinn' };
    const res = await withoutPrecheck(() => reserve(body));
    expectError(res, 409, 'CUSTOMER_LIMIT_EXCEEDED');
    expect(res.body.error.details).toEqual({ sku, customerId: 'quinn', limit: 2, held: 2, bought: 0, requested: 1 });
    const view = await stack.api('GET', `/v1/reservations/${reservationId}`);
    expect([404, 200]).toContain(view.status);
    if (view.status === 200) expect(view.body.status).toBe('REJECTED');
    expectError(await reserve(body), 409, 'CUSTOMER_LIMIT_EXCEEDED');
    expect((await stack.api('GET', `/v1/skus/${sku}`)).body).toMatchObject({ reserved: 2 });
  });

  it('400 INVALID_REQUEST naming customerId for a limited SKU without one', async () => {
    const sku = await limitedSku(10, 1);
    const res = await withoutPrecheck(() => reserve({ items: [{ sku, quantity: 1 }] }));
    expectError(res, 400, 'INVALID_REQUEST');
    expect(res.body.error.details).toMatchObject({ field: 'customerId' });
    expect((await stack.api('GET', `/v1/skus/${sku}`)).body).toMatchObject({ reserved: 0 });
  });
});

describe('bought units', () => {
  it('count against the limit after a commit, and a return gives them back', async () => {
    const sku = await limitedSku(10, 1);
    const first = await reserve({ items: [{ sku, quantity: 1 }], customerId: 'rosa' });
    expect(first.status).toBe(201);
    expect((await stack.api('POST', `/v1/reservations/${first.body.reservationId}/commit`, { body: {} })).status).toBe(200);
    const again = await reserve({ items: [{ sku, quantity: 1 }], customerId: 'rosa' });
    expectError(again, 409, 'CUSTOMER_LIMIT_EXCEEDED');
    expect(again.body.error.details).toMatchObject({ held: 0, bought: 1 });
    const returned = await stack.admin('POST', '/v1/returns', { body: { reservationId: first.body.reservationId, items: [{ sku, quantity: 1 }] } });
    expect(returned.status).toBe(200);
    expect((await reserve({ items: [{ sku, quantity: 1 }], customerId: 'rosa' })).status).toBe(201);
    await expectConsistent(stack.stock, sku);
  });
});
