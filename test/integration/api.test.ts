/**
 * The HTTP contract (../shared/API.md) end to end: the Express API, a Temporal dev server with a
 * worker, real Redis (db 9) and PostgreSQL (`stockhold_test`). Every test uses SKUs of its own.
 * Assertions are on behaviour; the only waits are bounded polls for things that are eventually
 * visible (an expired TTL, Temporal's visibility, a signal's effect).
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { keys } from '../../src/stock';
import { paymentSucceededSignal, searchAttributes, workflowIdOf } from '../../src/workflows/definitions';
import { outcomeOf, reserveUntilAnswered, tally, waitFor } from '../helpers/client';
import { uniqueId, uniqueSku } from '../helpers/env';
import { ADMIN_TOKEN, CLIENT_TOKEN, pollUntil, startStack, type ApiAnswer, type Stack } from '../helpers/stack';
import { expectConsistent } from '../helpers/stock';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

// ------------------------------------------------------------------ helpers

interface Line {
  sku: string;
  quantity: number;
}

/** A new SKU through the API (admin), with `total` units. */
async function createSku(total: number, prefix = 'API'): Promise<string> {
  const sku = uniqueSku(prefix);
  const res = await stack.admin('POST', '/v1/skus', { body: { sku, total, name: `item ${sku}` } });
  expect(res.status).toBe(201);
  return sku;
}

function reserve(body: Record<string, unknown>, token?: string) {
  return stack.api('POST', '/v1/reservations', { body, token });
}

/** A HELD reservation of `items` (201), returning its id and view. */
async function hold(items: Line[], extra: Record<string, unknown> = {}) {
  const reservationId = uniqueId('res');
  const res = await reserve({ reservationId, items, ...extra });
  expect({ status: res.status, reservationStatus: res.body?.status }).toEqual({
    status: 201,
    reservationStatus: 'HELD',
  });
  return { reservationId, view: res.body };
}

const stockOf = async (sku: string) => (await stack.api('GET', `/v1/skus/${sku}`)).body;

async function movementCount(sku: string): Promise<number> {
  const r = await stack.stock.db.query<{ n: string }>('SELECT count(*) AS n FROM stock_movements WHERE sku = $1', [
    sku,
  ]);
  return Number(r.rows[0]!.n);
}

async function movements(sku: string) {
  const res = await stack.admin('GET', `/v1/skus/${sku}/movements`);
  expect(res.status).toBe(200);
  return res.body.movements as { kind: string; delta: number; reservationId?: string }[];
}

/** Everything a refused call could have changed for a SKU. */
async function snapshot(sku: string) {
  return {
    stock: await stockOf(sku),
    movements: await movementCount(sku),
    holds: await stack.stock.redis.hgetall(keys.holds(sku)),
  };
}

/** The contract's error shape, with `code` and `status`. */
function expectError(res: ApiAnswer, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(res.body).toEqual({ error: { code, message: expect.any(String), details: expect.any(Object) } });
  expect(res.body.error.message.length).toBeGreaterThan(0);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
}

/** No workflow exists for this reservation id, and the API does not know it. */
async function expectNoReservation(reservationId: string): Promise<void> {
  expectError(await stack.api('GET', `/v1/reservations/${reservationId}`), 404, 'RESERVATION_NOT_FOUND');
  await expect(stack.env.client.workflow.getHandle(workflowIdOf(reservationId)).describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
}

async function workflowIds(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of stack.env.client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

/** Polls Temporal's (eventually consistent) visibility until `query` finds `workflowId`. */
async function expectVisible(query: string, workflowId: string): Promise<void> {
  const ids = await pollUntil(
    () => workflowIds(query),
    (found) => found.includes(workflowId),
    15_000,
    250,
  );
  expect(ids).toContain(workflowId);
}

function pollReservation(reservationId: string, status: string, timeoutMs = 20_000) {
  return pollUntil(
    () => stack.api('GET', `/v1/reservations/${reservationId}`),
    (res) => res.body?.status === status,
    timeoutMs,
    200,
  );
}

// ------------------------------------------------------------------ the flash sale

describe('the last unit', () => {
  it('2,000 concurrent buyers of the last unit, retrying a 503 as the contract says: one holds it (none only if its hold was given back under load), every other 409 INSUFFICIENT_STOCK', async () => {
    const sku = await createSku(1, 'STORM');
    const buyers = Array.from({ length: 2_000 }, (_, i) => ({
      // Half the buyers name their reservation, half let the server pick an id.
      ...(i % 2 === 0 ? { reservationId: uniqueId('storm') } : {}),
      items: [{ sku, quantity: 1 }],
    }));
    // A buyer answered 503 (a loaded machine) retries with its id, as the contract says: the
    // winner whose 201 was lost to a deadline learns it holds (200 HELD), so the figures are exact.
    const answers = await Promise.all(buyers.map((body) => reserveUntilAnswered((b) => reserve(b), body)));

    // The unit is held, unless the run that held it gave it back when it gave up under the load
    // (its buyer answered 503): a buyer refused while that hold stood was refused for good.
    const answered503 = answers.filter((a) => a.retried > 0).length;
    const held = answers.filter((a) => outcomeOf(a) === 'HELD').length;
    expect(tally(answers, outcomeOf)).toEqual(
      answered503 > 0 && held === 0
        ? { '409 INSUFFICIENT_STOCK': 2_000 }
        : { HELD: 1, '409 INSUFFICIENT_STOCK': 1_999 },
    );
    for (const a of answers.filter((x) => x.res.status === 409)) {
      expect(a.res.body.error.details).toEqual({ sku, requested: 1, available: 0 });
    }
    if (held === 0) return; // nothing more to see: the stores' agreement is checked by the other tests

    const winner = answers.find((a) => outcomeOf(a) === 'HELD')!.res.body;
    expect(winner.items).toEqual([{ sku, quantity: 1, committedQuantity: 0, returnedQuantity: 0 }]);
    expect(await stockOf(sku)).toEqual({
      sku,
      name: `item ${sku}`,
      total: 1,
      reserved: 1,
      available: 0,
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    const holds = await stack.admin('GET', `/v1/skus/${sku}/holds`);
    expect(holds.body.holds.map((h: { reservationId: string }) => h.reservationId)).toEqual([winner.reservationId]);
    await expectConsistent(stack.stock, sku);
  });
});

// ------------------------------------------------------------------ reservations

describe('reservations', () => {
  it('a short TTL really expires: the hold is released, the reservation is EXPIRED, a late commit is 409 RESERVATION_EXPIRED', async () => {
    const sku = await createSku(3);
    // (No check of the figures while held: on a loaded machine the 2 s may be over by then.)
    const { reservationId, view } = await hold([{ sku, quantity: 2 }], { ttlSeconds: 2 });
    expect(Date.parse(view.expiresAt) - Date.parse(view.createdAt)).toBe(2_000);

    const expired = await pollReservation(reservationId, 'EXPIRED');
    expect(expired.body).toMatchObject({
      reservationId,
      status: 'EXPIRED',
      items: [{ sku, quantity: 2, committedQuantity: 0, returnedQuantity: 0 }],
    });
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0, available: 3 });

    const commit = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} });
    expectError(commit, 409, 'RESERVATION_EXPIRED');
    // Cancelling an expired reservation answers its final view.
    const cancel = await stack.api('POST', `/v1/reservations/${reservationId}/cancel`, { body: {} });
    expect({ status: cancel.status, reservationStatus: cancel.body.status }).toEqual({
      status: 200,
      reservationStatus: 'EXPIRED',
    });
    // A repeat of the creating request answers the final view and holds nothing again.
    const repeat = await reserve({ reservationId, items: [{ sku, quantity: 2 }], ttlSeconds: 2 });
    expect({ status: repeat.status, reservationStatus: repeat.body.status }).toEqual({
      status: 200,
      reservationStatus: 'EXPIRED',
    });
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0, available: 3 });
    expect((await movements(sku)).map((m) => m.kind)).toEqual(['initial']);
    await expectConsistent(stack.stock, sku);
  });

  it('a partial commit sells only the committed part and releases the rest of the hold', async () => {
    const a = await createSku(10);
    const b = await createSku(4);
    const { reservationId } = await hold([
      { sku: a, quantity: 3 },
      { sku: b, quantity: 2 },
    ]);
    expect(await stockOf(a)).toMatchObject({ total: 10, reserved: 3 });

    const res = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, {
      body: { paymentId: 'pay-1', items: [{ sku: a, quantity: 1 }] },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      reservationId,
      status: 'COMMITTED',
      items: [
        { sku: a, quantity: 3, committedQuantity: 1, returnedQuantity: 0 },
        { sku: b, quantity: 2, committedQuantity: 0, returnedQuantity: 0 },
      ],
    });
    expect(await stockOf(a)).toMatchObject({ total: 9, reserved: 0, available: 9 });
    expect(await stockOf(b)).toMatchObject({ total: 4, reserved: 0, available: 4 });

    const sales = (await movements(a)).filter((m) => m.kind === 'sale');
    expect(sales).toEqual([expect.objectContaining({ kind: 'sale', delta: -1, reservationId })]);
    expect((await movements(b)).map((m) => m.kind)).toEqual(['initial']);
    await expectConsistent(stack.stock, a);
    await expectConsistent(stack.stock, b);
  });

  it('a commit without items sells everything held', async () => {
    const sku = await createSku(5);
    const { reservationId } = await hold([{ sku, quantity: 2 }]);
    const res = await stack.api('POST', `/v1/reservations/${reservationId}/commit`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'COMMITTED',
      items: [{ sku, quantity: 2, committedQuantity: 2, returnedQuantity: 0 }],
    });
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0, available: 3 });
    await expectConsistent(stack.stock, sku);
  });

  it('a cart with one short line is 409 INSUFFICIENT_STOCK naming that line and holds nothing on any line', async () => {
    const a = await createSku(10);
    const b = await createSku(1);
    const c = await createSku(5);
    const reservationId = uniqueId('cart');
    const res = await reserve({
      reservationId,
      items: [
        { sku: a, quantity: 2 },
        { sku: b, quantity: 3 },
        { sku: c, quantity: 1 },
      ],
    });
    expectError(res, 409, 'INSUFFICIENT_STOCK');
    expect(res.body.error.details).toEqual({ sku: b, requested: 3, available: 1 });
    for (const [sku, total] of [
      [a, 10],
      [b, 1],
      [c, 5],
    ] as const) {
      expect(await stockOf(sku)).toMatchObject({ total, reserved: 0, available: total });
      expect(await stack.stock.redis.hlen(keys.holds(sku))).toBe(0);
      await expectConsistent(stack.stock, sku);
    }
  });

  it('a cart that fits holds every line', async () => {
    const a = await createSku(10);
    const b = await createSku(1);
    const { view } = await hold(
      [
        { sku: a, quantity: 2 },
        { sku: b, quantity: 1 },
      ],
      { customerId: 'cust-42' },
    );
    expect(view).toMatchObject({
      status: 'HELD',
      customerId: 'cust-42',
      items: [
        { sku: a, quantity: 2, committedQuantity: 0, returnedQuantity: 0 },
        { sku: b, quantity: 1, committedQuantity: 0, returnedQuantity: 0 },
      ],
    });
    expect(view.workflowId).toBe(workflowIdOf(view.reservationId));
    expect(await stockOf(a)).toMatchObject({ reserved: 2, available: 8 });
    expect(await stockOf(b)).toMatchObject({ reserved: 1, available: 0 });
    await expectConsistent(stack.stock, a);
    await expectConsistent(stack.stock, b);
  });

  it('a cart naming an unknown SKU is 404 SKU_NOT_FOUND and holds nothing', async () => {
    const a = await createSku(10);
    const missing = uniqueSku('NOPE');
    const reservationId = uniqueId('cart');
    const res = await reserve({
      reservationId,
      items: [
        { sku: a, quantity: 1 },
        { sku: missing, quantity: 1 },
      ],
    });
    expectError(res, 404, 'SKU_NOT_FOUND');
    expect(res.body.error.details).toMatchObject({ sku: missing });
    expect(await stockOf(a)).toMatchObject({ reserved: 0 });
  });

  it('a reservation without an id gets a server-generated one and the default TTL of 600 s', async () => {
    const sku = await createSku(2);
    const res = await reserve({ items: [{ sku, quantity: 1 }] });
    expect(res.status).toBe(201);
    expect(res.body.reservationId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(Date.parse(res.body.expiresAt) - Date.parse(res.body.createdAt)).toBe(600_000);
    const got = await stack.api('GET', `/v1/reservations/${res.body.reservationId}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it('GET of an unknown reservation is 404 RESERVATION_NOT_FOUND', async () => {
    expectError(await stack.api('GET', `/v1/reservations/${uniqueId('ghost')}`), 404, 'RESERVATION_NOT_FOUND');
    for (const action of ['commit', 'cancel']) {
      expectError(
        await stack.api('POST', `/v1/reservations/${uniqueId('ghost')}/${action}`, { body: {} }),
        404,
        'RESERVATION_NOT_FOUND',
      );
    }
    expectError(
      await stack.api('POST', `/v1/reservations/${uniqueId('ghost')}/extend`, { body: { ttlSeconds: 60 } }),
      404,
      'RESERVATION_NOT_FOUND',
    );
  });
});

describe('idempotent reservation ids', () => {
  it('same id + same body answers 200 with the same view and holds nothing more; another body is 409 RESERVATION_ID_CONFLICT', async () => {
    const sku = await createSku(5);
    const body = { reservationId: uniqueId('idem'), items: [{ sku, quantity: 2 }], ttlSeconds: 900, customerId: 'c1' };
    const first = await reserve(body);
    expect(first.status).toBe(201);

    const again = await reserve(body);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(await stockOf(sku)).toMatchObject({ total: 5, reserved: 2, available: 3 });

    for (const other of [
      { ...body, items: [{ sku, quantity: 1 }] },
      { ...body, ttlSeconds: 901 },
      { ...body, customerId: 'c2' },
    ]) {
      expectError(await reserve(other), 409, 'RESERVATION_ID_CONFLICT');
    }
    expect(await stockOf(sku)).toMatchObject({ total: 5, reserved: 2, available: 3 });
    await expectConsistent(stack.stock, sku);
  });

  it('concurrent repeats of one reservation (same id, same body) hold once: one 201, every other 200 with the same reservation', async () => {
    const sku = await createSku(2, 'DUP');
    const body = { reservationId: uniqueId('dup'), items: [{ sku, quantity: 2 }] };
    // A client retrying impatiently: repeats sent while the first is still being decided, and after.
    // A 503 (a loaded machine) is retried with the same id and body, as the contract says.
    const answers = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, (i % 20) * 5));
        return reserveUntilAnswered((b) => reserve(b), body);
      }),
    );
    const outcomes = tally(answers, (a) => `${a.res.status} ${a.res.body?.status ?? a.res.body?.error?.code}`);
    // The request that held hears 201, unless its answer was lost to a 503: then its retry, like
    // every other repeat, hears 200.
    const createdAnswerLost = !answers.some((a) => a.res.status === 201) && answers.some((a) => a.retried > 0);
    expect(outcomes).toEqual(createdAnswerLost ? { '200 HELD': 60 } : { '201 HELD': 1, '200 HELD': 59 });
    for (const a of answers)
      expect(a.res.body).toMatchObject({
        reservationId: body.reservationId,
        status: 'HELD',
        items: [{ sku, quantity: 2, committedQuantity: 0, returnedQuantity: 0 }],
      });
    expect(await stockOf(sku)).toMatchObject({ total: 2, reserved: 2, available: 0 });
    await expectConsistent(stack.stock, sku);
  });

  it('a repeat sent while its first request is under way joins it (no counter read of its own); one sent after reads its own hold as a shortage and is answered 200, not refused as short', async () => {
    // A client that gave up waiting and resent: answered by its own pre-check, the repeat could be
    // refused while the first request is then admitted and holds. It joins the first instead.
    const sku = await createSku(1, 'DUP');
    const body = { reservationId: uniqueId('dup'), items: [{ sku, quantity: 1 }] };
    let reads = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    stack.faults.beforeCounterRead = async (key) => {
      if (key !== keys.stock(sku)) return;
      reads += 1;
      if (reads === 1) await gate; // the first request waits at its read until the repeat is sent
    };
    let answers: ApiAnswer[];
    try {
      const first = reserve(body);
      await waitFor(
        async () => reads,
        (n) => n === 1,
        20,
      );
      const repeat = reserve(body);
      await new Promise((r) => setTimeout(r, 200)); // the repeat is in, and joined
      release();
      answers = await Promise.all([first, repeat]);
      expect(reads).toBe(1);
      // After both: a repeat reads the counters, sees its own hold as the shortage, and is a repeat.
      const late = await reserve(body);
      expect(reads).toBe(2);
      answers.push(late);
    } finally {
      stack.faults.beforeCounterRead = undefined;
    }
    expect(answers.map((a) => `${a.status} ${a.body?.status ?? a.body?.error?.code}`)).toEqual([
      '201 HELD',
      '200 HELD',
      '200 HELD',
    ]);
    expect(answers[1]!.body).toEqual(answers[0]!.body);
    expect(await stockOf(sku)).toMatchObject({ total: 1, reserved: 1, available: 0 });
    await expectConsistent(stack.stock, sku);
  });

  it('after commit, the same POST answers 200 with the COMMITTED view and holds nothing again', async () => {
    const sku = await createSku(5);
    const body = { reservationId: uniqueId('idem'), items: [{ sku, quantity: 2 }] };
    expect((await reserve(body)).status).toBe(201);
    const committed = await stack.api('POST', `/v1/reservations/${body.reservationId}/commit`, { body: {} });
    expect(committed.status).toBe(200);
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0 });

    const repeat = await reserve(body);
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual(committed.body);
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0, available: 3 });
    // Once more, after the workflow has surely closed.
    await pollUntil(
      () => stack.env.client.workflow.getHandle(workflowIdOf(body.reservationId)).describe(),
      (d) => d.status.name !== 'RUNNING',
      10_000,
    );
    const late = await reserve(body);
    expect(late.status).toBe(200);
    expect(late.body).toEqual(committed.body);
    expectError(await reserve({ ...body, items: [{ sku, quantity: 1 }] }), 409, 'RESERVATION_ID_CONFLICT');
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0, available: 3 });
    expect((await movements(sku)).filter((m) => m.kind === 'sale')).toHaveLength(1);
    await expectConsistent(stack.stock, sku);
  });

  it('commit twice answers 200 with the same final view; cancel after commit is 409 RESERVATION_COMMITTED', async () => {
    const sku = await createSku(5);
    const { reservationId } = await hold([{ sku, quantity: 2 }]);
    const first = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: { paymentId: 'p-1' } });
    expect(first.status).toBe(200);
    expect(first.body.status).toBe('COMMITTED');
    const second = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: { paymentId: 'p-1' } });
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);

    expectError(
      await stack.api('POST', `/v1/reservations/${reservationId}/cancel`, { body: {} }),
      409,
      'RESERVATION_COMMITTED',
    );
    expectError(
      await stack.api('POST', `/v1/reservations/${reservationId}/extend`, { body: { ttlSeconds: 60 } }),
      409,
      'RESERVATION_COMMITTED',
    );
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0 });
    expect((await movements(sku)).filter((m) => m.kind === 'sale')).toEqual([
      expect.objectContaining({ delta: -2, reservationId }),
    ]);
    await expectConsistent(stack.stock, sku);
  });

  it('cancel twice answers 200 CANCELLED both times; extend and commit after cancel are 409', async () => {
    const sku = await createSku(5);
    const { reservationId } = await hold([{ sku, quantity: 3 }]);
    const first = await stack.api('POST', `/v1/reservations/${reservationId}/cancel`, {
      body: { reason: 'changed my mind' },
    });
    expect(first.status).toBe(200);
    expect(first.body.status).toBe('CANCELLED');
    expect(await stockOf(sku)).toMatchObject({ total: 5, reserved: 0, available: 5 });
    const second = await stack.api('POST', `/v1/reservations/${reservationId}/cancel`, {
      body: { reason: 'changed my mind' },
    });
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);

    expectError(
      await stack.api('POST', `/v1/reservations/${reservationId}/extend`, { body: { ttlSeconds: 60 } }),
      409,
      'RESERVATION_CANCELLED',
    );
    expectError(
      await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} }),
      409,
      'RESERVATION_CANCELLED',
    );
    const repeat = await reserve({ reservationId, items: [{ sku, quantity: 3 }] });
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual(first.body);
    expect(await stockOf(sku)).toMatchObject({ total: 5, reserved: 0, available: 5 });
    expect((await movements(sku)).map((m) => m.kind)).toEqual(['initial']);
    await expectConsistent(stack.stock, sku);
  });

  it('extend answers 200 with expiresAt = now + ttlSeconds and keeps the hold', async () => {
    const sku = await createSku(5);
    const { reservationId, view } = await hold([{ sku, quantity: 1 }], { ttlSeconds: 60 });
    const askedAt = Date.now();
    const res = await stack.api('POST', `/v1/reservations/${reservationId}/extend`, { body: { ttlSeconds: 3_600 } });
    const answeredAt = Date.now();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ reservationId, status: 'HELD', createdAt: view.createdAt });
    // now + ttlSeconds, "now" being a moment between the request and its answer (the dev server
    // runs on this machine's clock: no slack, and nothing measured).
    const from = Date.parse(res.body.expiresAt) - 3_600_000;
    expect({ from: from >= askedAt && from <= answeredAt }).toEqual({ from: true });
    const got = await stack.api('GET', `/v1/reservations/${reservationId}`);
    expect(got.body.expiresAt).toBe(res.body.expiresAt);
    // The admin view of holds carries the new deadline too.
    const holds = await stack.admin('GET', `/v1/skus/${sku}/holds`);
    expect(holds.body).toEqual({ sku, holds: [{ reservationId, quantity: 1, expiresAt: res.body.expiresAt }] });
    expect(await stockOf(sku)).toMatchObject({ reserved: 1 });
  });
});

// ------------------------------------------------------------------ stock

describe('the stock contract', () => {
  it('POST /v1/skus answers 201 with the stock view, 409 SKU_EXISTS for a second time', async () => {
    const sku = uniqueSku('NEW');
    const res = await stack.admin('POST', '/v1/skus', { body: { sku, total: 7, name: 'Seven' } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      sku,
      name: 'Seven',
      total: 7,
      reserved: 0,
      available: 7,
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    const again = await stack.admin('POST', '/v1/skus', { body: { sku, total: 9, name: 'Nine' } });
    expectError(again, 409, 'SKU_EXISTS');
    expect(await stockOf(sku)).toEqual({
      sku,
      name: 'Seven',
      total: 7,
      reserved: 0,
      available: 7,
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    // name is optional, total 0 is a valid figure
    const bare = uniqueSku('NEW');
    const noName = await stack.admin('POST', '/v1/skus', { body: { sku: bare, total: 0 } });
    expect(noName.status).toBe(201);
    expect(noName.body).toMatchObject({ sku: bare, total: 0, available: 0 });
    await expectConsistent(stack.stock, sku);
  });

  it('GET /v1/skus/:sku answers the stock view, 404 SKU_NOT_FOUND for an unknown SKU', async () => {
    const sku = await createSku(4);
    await hold([{ sku, quantity: 3 }]);
    const res = await stack.api('GET', `/v1/skus/${sku}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      sku,
      name: `item ${sku}`,
      total: 4,
      reserved: 3,
      available: 1,
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    const missing = uniqueSku('NOPE');
    const unknown = await stack.api('GET', `/v1/skus/${missing}`);
    expectError(unknown, 404, 'SKU_NOT_FOUND');
    expect(unknown.body.error.details).toMatchObject({ sku: missing });
  });

  it('GET /v1/availability answers items and missing; 400 for no SKUs or more than 100', async () => {
    const a = await createSku(3);
    const b = await createSku(0);
    const x = uniqueSku('NOPE');
    const res = await stack.api('GET', `/v1/availability?skus=${a},${b},${x}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      items: [
        {
          sku: a,
          name: `item ${a}`,
          total: 3,
          reserved: 0,
          available: 3,
          lowStockThreshold: null,
          maxPerCustomer: null,
        },
        {
          sku: b,
          name: `item ${b}`,
          total: 0,
          reserved: 0,
          available: 0,
          lowStockThreshold: null,
          maxPerCustomer: null,
        },
      ],
      missing: [x],
    });
    const hundred = Array.from({ length: 100 }, (_, i) => (i === 0 ? a : `${x}-${i}`));
    const full = await stack.api('GET', `/v1/availability?skus=${hundred.join(',')}`);
    expect(full.status).toBe(200);
    expect(full.body.items).toHaveLength(1);
    expect(full.body.missing).toHaveLength(99);

    for (const query of ['', '?skus=', `?skus=${[...hundred, `${x}-100`].join(',')}`]) {
      const bad = await stack.api('GET', `/v1/availability${query}`);
      expectError(bad, 400, 'INVALID_REQUEST');
      expect(bad.body.error.details.field).toBe('skus');
    }
  });

  it('restock answers 200 with total raised; 404 for an unknown SKU', async () => {
    const sku = await createSku(2);
    await hold([{ sku, quantity: 2 }]);
    const res = await stack.admin('POST', `/v1/skus/${sku}/restock`, { body: { quantity: 5, reason: 'truck' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      sku,
      name: `item ${sku}`,
      total: 7,
      reserved: 2,
      available: 5,
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    expect(await stockOf(sku)).toEqual(res.body);
    expect((await movements(sku))[0]).toMatchObject({ kind: 'restock', delta: 5, reason: 'truck' });
    expectError(
      await stack.admin('POST', `/v1/skus/${uniqueSku('NOPE')}/restock`, { body: { quantity: 5 } }),
      404,
      'SKU_NOT_FOUND',
    );
    await expectConsistent(stack.stock, sku);
  });

  it('adjustments answer 200; below reserved is 409 WOULD_OVERSELL and changes nothing', async () => {
    const sku = await createSku(10);
    await hold([{ sku, quantity: 3 }]);
    const down = await stack.admin('POST', `/v1/skus/${sku}/adjustments`, {
      body: { delta: -4, reason: 'broken in store' },
    });
    expect(down.status).toBe(200);
    expect(down.body).toEqual({
      sku,
      name: `item ${sku}`,
      total: 6,
      reserved: 3,
      available: 3,
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
    const up = await stack.admin('POST', `/v1/skus/${sku}/adjustments`, { body: { delta: 1, reason: 'found one' } });
    expect(up.body).toMatchObject({ total: 7, reserved: 3, available: 4 });

    const before = await snapshot(sku);
    const over = await stack.admin('POST', `/v1/skus/${sku}/adjustments`, { body: { delta: -5, reason: 'count' } });
    expectError(over, 409, 'WOULD_OVERSELL');
    expect(await snapshot(sku)).toEqual(before);
    // Down to exactly what is reserved is fine.
    const exact = await stack.admin('POST', `/v1/skus/${sku}/adjustments`, { body: { delta: -4, reason: 'count' } });
    expect(exact.body).toMatchObject({ total: 3, reserved: 3, available: 0 });
    expectError(
      await stack.admin('POST', `/v1/skus/${uniqueSku('NOPE')}/adjustments`, { body: { delta: 1, reason: 'x' } }),
      404,
      'SKU_NOT_FOUND',
    );
    await expectConsistent(stack.stock, sku);
  });

  it('GET holds (admin) lists each live reservation with its quantity and expiresAt; 404 for an unknown SKU', async () => {
    const sku = await createSku(10);
    const first = await hold([{ sku, quantity: 2 }], { ttlSeconds: 300 });
    const second = await hold([{ sku, quantity: 3 }], { ttlSeconds: 900 });
    const res = await stack.admin('GET', `/v1/skus/${sku}/holds`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      sku,
      holds: [
        { reservationId: first.reservationId, quantity: 2, expiresAt: first.view.expiresAt },
        { reservationId: second.reservationId, quantity: 3, expiresAt: second.view.expiresAt },
      ],
    });
    await stack.api('POST', `/v1/reservations/${first.reservationId}/cancel`, { body: {} });
    const after = await stack.admin('GET', `/v1/skus/${sku}/holds`);
    expect(after.body.holds.map((h: { reservationId: string }) => h.reservationId)).toEqual([second.reservationId]);
    expectError(await stack.admin('GET', `/v1/skus/${uniqueSku('NOPE')}/holds`), 404, 'SKU_NOT_FOUND');
  });

  it('GET movements lists the ledger newest first, honours ?limit, 400 for limit 0/501/abc, 404 for an unknown SKU', async () => {
    const sku = await createSku(5);
    await stack.admin('POST', `/v1/skus/${sku}/restock`, { body: { quantity: 2 } });
    await stack.admin('POST', `/v1/skus/${sku}/adjustments`, { body: { delta: -1, reason: 'damaged' } });
    const { reservationId } = await hold([{ sku, quantity: 2 }]);
    await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} });

    const all = await stack.admin('GET', `/v1/skus/${sku}/movements`);
    expect(all.status).toBe(200);
    expect(all.body.movements.map((m: { kind: string; delta: number }) => [m.kind, m.delta])).toEqual([
      ['sale', -2],
      ['adjustment', -1],
      ['restock', 2],
      ['initial', 5],
    ]);
    for (const m of all.body.movements) {
      expect(m).toEqual(expect.objectContaining({ id: expect.any(String), at: expect.any(String) }));
      expect(Number.isNaN(Date.parse(m.at))).toBe(false);
    }
    expect(all.body.movements[0]).toMatchObject({ reservationId });
    expect(all.body.movements[1]).toMatchObject({ reason: 'damaged' });

    const one = await stack.admin('GET', `/v1/skus/${sku}/movements?limit=1`);
    expect(one.body.movements).toEqual([all.body.movements[0]]);
    const most = await stack.admin('GET', `/v1/skus/${sku}/movements?limit=500`);
    expect(most.body.movements).toHaveLength(4);

    for (const limit of ['0', '501', 'abc', '1.5', '-1', '']) {
      const bad = await stack.admin('GET', `/v1/skus/${sku}/movements?limit=${limit}`);
      expectError(bad, 400, 'INVALID_REQUEST');
      expect(bad.body.error.details.field).toBe('limit');
    }
    expectError(await stack.admin('GET', `/v1/skus/${uniqueSku('NOPE')}/movements`), 404, 'SKU_NOT_FOUND');
  });

  it('POST /v1/returns answers 200 and raises total; 409 RETURN_EXCEEDS_SALE; 409 RESERVATION_NOT_COMMITTED; 404 for an unknown reservation', async () => {
    const sku = await createSku(10);
    const { reservationId } = await hold([{ sku, quantity: 3 }]);
    expect((await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} })).status).toBe(200);
    expect(await stockOf(sku)).toMatchObject({ total: 7 });

    const ret = await stack.admin('POST', '/v1/returns', {
      body: { reservationId, items: [{ sku, quantity: 1 }], reason: 'too small' },
    });
    expect(ret.status).toBe(200);
    expect(ret.body).toEqual({ reservationId, items: [{ sku, returnedQuantity: 1 }] });
    expect(await stockOf(sku)).toMatchObject({ total: 8, reserved: 0, available: 8 });
    expect((await movements(sku))[0]).toMatchObject({ kind: 'return', delta: 1, reservationId, reason: 'too small' });

    const before = await snapshot(sku);
    const exceeds = await stack.admin('POST', '/v1/returns', {
      body: { reservationId, items: [{ sku, quantity: 3 }] },
    });
    expectError(exceeds, 409, 'RETURN_EXCEEDS_SALE');
    expect(await snapshot(sku)).toEqual(before);

    const heldOnly = await hold([{ sku, quantity: 1 }]);
    const notCommitted = await stack.admin('POST', '/v1/returns', {
      body: { reservationId: heldOnly.reservationId, items: [{ sku, quantity: 1 }] },
    });
    expectError(notCommitted, 409, 'RESERVATION_NOT_COMMITTED');
    expectError(
      await stack.admin('POST', '/v1/returns', {
        body: { reservationId: uniqueId('ghost'), items: [{ sku, quantity: 1 }] },
      }),
      404,
      'RESERVATION_NOT_FOUND',
    );
    // The rest of the sale can still come back.
    const rest = await stack.admin('POST', '/v1/returns', { body: { reservationId, items: [{ sku, quantity: 2 }] } });
    expect(rest.status).toBe(200);
    expect(await stockOf(sku)).toMatchObject({ total: 10, reserved: 1, available: 9 });
    await expectConsistent(stack.stock, sku);
  });

  it('an Idempotency-Key repeat answers the first answer and changes nothing; the key with another body is 422 IDEMPOTENCY_KEY_REUSED', async () => {
    // POST /v1/skus
    const sku = uniqueSku('IDEM');
    const createKey = uniqueId('key');
    const created = await stack.admin('POST', '/v1/skus', {
      body: { sku, total: 5 },
      headers: { 'Idempotency-Key': createKey },
    });
    expect(created.status).toBe(201);
    const createdAgain = await stack.admin('POST', '/v1/skus', {
      body: { sku, total: 5 },
      headers: { 'Idempotency-Key': createKey },
    });
    expect(createdAgain.status).toBe(201);
    expect(createdAgain.body).toEqual(created.body);
    expectError(
      await stack.admin('POST', '/v1/skus', { body: { sku, total: 6 }, headers: { 'Idempotency-Key': createKey } }),
      422,
      'IDEMPOTENCY_KEY_REUSED',
    );
    expect(await movementCount(sku)).toBe(1);

    // restock
    const restockKey = uniqueId('key');
    const restock = () =>
      stack.admin('POST', `/v1/skus/${sku}/restock`, {
        body: { quantity: 3, reason: 'truck' },
        headers: { 'Idempotency-Key': restockKey },
      });
    const r1 = await restock();
    expect(r1.status).toBe(200);
    expect(r1.body).toMatchObject({ total: 8 });
    const r2 = await restock();
    expect(r2.status).toBe(200);
    expect(r2.body).toEqual(r1.body);
    expect(await stockOf(sku)).toMatchObject({ total: 8 });
    expect(await movementCount(sku)).toBe(2);
    const before = await snapshot(sku);
    expectError(
      await stack.admin('POST', `/v1/skus/${sku}/restock`, {
        body: { quantity: 4, reason: 'truck' },
        headers: { 'Idempotency-Key': restockKey },
      }),
      422,
      'IDEMPOTENCY_KEY_REUSED',
    );
    expect(await snapshot(sku)).toEqual(before);

    // adjustment
    const adjustKey = uniqueId('key');
    const adjust = () =>
      stack.admin('POST', `/v1/skus/${sku}/adjustments`, {
        body: { delta: -2, reason: 'count' },
        headers: { 'Idempotency-Key': adjustKey },
      });
    const a1 = await adjust();
    const a2 = await adjust();
    expect(a1.status).toBe(200);
    expect(a2.status).toBe(200);
    expect(a2.body).toEqual(a1.body);
    expect(await stockOf(sku)).toMatchObject({ total: 6 });

    // returns
    const { reservationId } = await hold([{ sku, quantity: 2 }]);
    await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} });
    const returnKey = uniqueId('key');
    const give = (quantity: number) =>
      stack.admin('POST', '/v1/returns', {
        body: { reservationId, items: [{ sku, quantity }] },
        headers: { 'Idempotency-Key': returnKey },
      });
    const g1 = await give(1);
    const g2 = await give(1);
    expect(g1.status).toBe(200);
    expect(g2.status).toBe(200);
    expect(g2.body).toEqual(g1.body);
    expect(await stockOf(sku)).toMatchObject({ total: 5, reserved: 0 });
    expectError(await give(2), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await stockOf(sku)).toMatchObject({ total: 5, reserved: 0 });
    expect((await movements(sku)).filter((m) => m.kind === 'return')).toHaveLength(1);
    await expectConsistent(stack.stock, sku);
  });
});

// ------------------------------------------------------------------ bad input

interface Ctx {
  sku: string;
  /** An id no reservation has: the bodies of new reservations use it, so its absence can be checked. */
  rid: string;
  /** A HELD reservation (1 unit of `sku`) for the cases that need one. */
  held: string;
  /** A SKU name that must not come to exist. */
  newSku: string;
}

interface BadCase {
  method?: 'GET' | 'POST';
  path?: (c: Ctx) => string;
  body?: (c: Ctx) => unknown;
  rawBody?: (c: Ctx) => string;
  headers?: Record<string, string>;
  admin?: boolean;
  needsHold?: boolean;
  field: string;
}

const one = (c: Ctx, quantity: unknown) => ({ reservationId: c.rid, items: [{ sku: c.sku, quantity }] });
const hold1 = (c: Ctx) => ({ reservationId: c.rid, items: [{ sku: c.sku, quantity: 1 }] });

const badCases: Record<string, BadCase> = {
  // POST /v1/reservations: quantities
  'reservation quantity as a string': { body: (c) => one(c, '1'), field: 'items.0.quantity' },
  'reservation quantity as a float': { body: (c) => one(c, 1.5), field: 'items.0.quantity' },
  'reservation quantity negative': { body: (c) => one(c, -1), field: 'items.0.quantity' },
  'reservation quantity zero': { body: (c) => one(c, 0), field: 'items.0.quantity' },
  'reservation quantity 10001': { body: (c) => one(c, 10_001), field: 'items.0.quantity' },
  'reservation quantity null': { body: (c) => one(c, null), field: 'items.0.quantity' },
  'reservation quantity 1e400 (Infinity)': {
    rawBody: (c) => `{"reservationId":"${c.rid}","items":[{"sku":"${c.sku}","quantity":1e400}]}`,
    field: 'items.0.quantity',
  },
  'reservation quantity missing': {
    body: (c) => ({ reservationId: c.rid, items: [{ sku: c.sku }] }),
    field: 'items.0.quantity',
  },
  'bad quantity on the second line': {
    body: (c) => ({
      reservationId: c.rid,
      items: [
        { sku: c.sku, quantity: 1 },
        { sku: `${c.sku}-b`, quantity: 0 },
      ],
    }),
    field: 'items.1.quantity',
  },
  // POST /v1/reservations: items
  'reservation without items': { body: (c) => ({ reservationId: c.rid }), field: 'items' },
  'reservation with empty items': { body: (c) => ({ reservationId: c.rid, items: [] }), field: 'items' },
  'reservation with 51 lines': {
    body: (c) => ({
      reservationId: c.rid,
      items: Array.from({ length: 51 }, (_, i) => ({ sku: i === 0 ? c.sku : `${c.sku}-${i}`, quantity: 1 })),
    }),
    field: 'items',
  },
  'reservation items not a list': {
    body: (c) => ({ reservationId: c.rid, items: { sku: c.sku, quantity: 1 } }),
    field: 'items',
  },
  'reservation with a duplicate sku': {
    body: (c) => ({
      reservationId: c.rid,
      items: [
        { sku: c.sku, quantity: 1 },
        { sku: c.sku, quantity: 1 },
      ],
    }),
    field: 'items.1.sku',
  },
  'reservation with a malformed sku': {
    body: (c) => ({ reservationId: c.rid, items: [{ sku: '-bad sku', quantity: 1 }] }),
    field: 'items.0.sku',
  },
  'reservation with a 65-character sku': {
    body: (c) => ({ reservationId: c.rid, items: [{ sku: 'A'.repeat(65), quantity: 1 }] }),
    field: 'items.0.sku',
  },
  'reservation line without sku': {
    body: (c) => ({ reservationId: c.rid, items: [{ quantity: 1 }] }),
    field: 'items.0.sku',
  },
  'reservation line with an unknown field': {
    body: (c) => ({ reservationId: c.rid, items: [{ sku: c.sku, quantity: 1, price: 10 }] }),
    field: 'items.0.price',
  },
  // POST /v1/reservations: other fields
  'malformed reservationId': {
    body: (c) => ({ reservationId: 'has space', items: [{ sku: c.sku, quantity: 1 }] }),
    field: 'reservationId',
  },
  '65-character reservationId': {
    body: (c) => ({ reservationId: 'r'.repeat(65), items: [{ sku: c.sku, quantity: 1 }] }),
    field: 'reservationId',
  },
  'reservationId as a number': {
    body: (c) => ({ reservationId: 42, items: [{ sku: c.sku, quantity: 1 }] }),
    field: 'reservationId',
  },
  'ttlSeconds 0': { body: (c) => ({ ...hold1(c), ttlSeconds: 0 }), field: 'ttlSeconds' },
  'ttlSeconds 86401': { body: (c) => ({ ...hold1(c), ttlSeconds: 86_401 }), field: 'ttlSeconds' },
  'ttlSeconds "10"': { body: (c) => ({ ...hold1(c), ttlSeconds: '10' }), field: 'ttlSeconds' },
  'ttlSeconds 1.5': { body: (c) => ({ ...hold1(c), ttlSeconds: 1.5 }), field: 'ttlSeconds' },
  'customerId of 129 characters': { body: (c) => ({ ...hold1(c), customerId: 'c'.repeat(129) }), field: 'customerId' },
  'customerId empty': { body: (c) => ({ ...hold1(c), customerId: '' }), field: 'customerId' },
  'customerId a number': { body: (c) => ({ ...hold1(c), customerId: 7 }), field: 'customerId' },
  'an unknown extra field': { body: (c) => ({ ...hold1(c), color: 'red' }), field: 'color' },
  // POST /v1/reservations: the body itself
  'body an array': { body: (c) => [hold1(c)], field: '(body)' },
  'body a JSON string': { body: () => 'reserve please', field: '(body)' },
  'body null': { rawBody: () => 'null', field: '(body)' },
  'body invalid JSON': { rawBody: (c) => `{"reservationId":"${c.rid}","items":[`, field: '(body)' },
  'body with a non-JSON content-type': {
    rawBody: (c) => JSON.stringify(hold1(c)),
    headers: { 'content-type': 'text/plain' },
    field: '(body)',
  },
  'no body at all': { field: '(body)' },
  // commit / cancel / extend / get
  'extend with ttlSeconds 0': {
    path: (c) => `/v1/reservations/${c.held}/extend`,
    body: () => ({ ttlSeconds: 0 }),
    needsHold: true,
    field: 'ttlSeconds',
  },
  'extend with ttlSeconds "60"': {
    path: (c) => `/v1/reservations/${c.held}/extend`,
    body: () => ({ ttlSeconds: '60' }),
    needsHold: true,
    field: 'ttlSeconds',
  },
  'extend with ttlSeconds 86401': {
    path: (c) => `/v1/reservations/${c.held}/extend`,
    body: () => ({ ttlSeconds: 86_401 }),
    needsHold: true,
    field: 'ttlSeconds',
  },
  'extend without ttlSeconds': {
    path: (c) => `/v1/reservations/${c.held}/extend`,
    body: () => ({}),
    needsHold: true,
    field: 'ttlSeconds',
  },
  'commit with quantity "1"': {
    path: (c) => `/v1/reservations/${c.held}/commit`,
    body: (c) => ({ items: [{ sku: c.sku, quantity: '1' }] }),
    needsHold: true,
    field: 'items.0.quantity',
  },
  'commit with empty items': {
    path: (c) => `/v1/reservations/${c.held}/commit`,
    body: () => ({ items: [] }),
    needsHold: true,
    field: 'items',
  },
  'commit with an unknown field': {
    path: (c) => `/v1/reservations/${c.held}/commit`,
    body: () => ({ paymentId: 'p', tip: 5 }),
    needsHold: true,
    field: 'tip',
  },
  'commit with an empty paymentId': {
    path: (c) => `/v1/reservations/${c.held}/commit`,
    body: () => ({ paymentId: '' }),
    needsHold: true,
    field: 'paymentId',
  },
  'commit with a body an array': {
    path: (c) => `/v1/reservations/${c.held}/commit`,
    body: () => [],
    needsHold: true,
    field: '(body)',
  },
  'cancel with an unknown field': {
    path: (c) => `/v1/reservations/${c.held}/cancel`,
    body: () => ({ why: 'x' }),
    needsHold: true,
    field: 'why',
  },
  'cancel with an empty reason': {
    path: (c) => `/v1/reservations/${c.held}/cancel`,
    body: () => ({ reason: '' }),
    needsHold: true,
    field: 'reason',
  },
  'GET a malformed reservation id': { method: 'GET', path: () => '/v1/reservations/bad!id', field: 'reservationId' },
  // stock
  'GET a malformed sku': { method: 'GET', path: () => '/v1/skus/-bad', field: 'sku' },
  'availability with a malformed sku': {
    method: 'GET',
    path: (c) => `/v1/availability?skus=${c.sku},bad%20sku`,
    field: 'skus.1',
  },
  'new SKU with total -1': {
    admin: true,
    path: () => '/v1/skus',
    body: (c) => ({ sku: c.newSku, total: -1 }),
    field: 'total',
  },
  'new SKU with total 1.5': {
    admin: true,
    path: () => '/v1/skus',
    body: (c) => ({ sku: c.newSku, total: 1.5 }),
    field: 'total',
  },
  'new SKU with total "5"': {
    admin: true,
    path: () => '/v1/skus',
    body: (c) => ({ sku: c.newSku, total: '5' }),
    field: 'total',
  },
  'new SKU with total 2^31': {
    admin: true,
    path: () => '/v1/skus',
    body: (c) => ({ sku: c.newSku, total: 2 ** 31 }),
    field: 'total',
  },
  'new SKU with a malformed sku': {
    admin: true,
    path: () => '/v1/skus',
    body: () => ({ sku: 'a b', total: 1 }),
    field: 'sku',
  },
  'new SKU with an unknown field': {
    admin: true,
    path: () => '/v1/skus',
    body: (c) => ({ sku: c.newSku, total: 1, price: 3 }),
    field: 'price',
  },
  'restock of 0': {
    admin: true,
    path: (c) => `/v1/skus/${c.sku}/restock`,
    body: () => ({ quantity: 0 }),
    field: 'quantity',
  },
  'restock of -5': {
    admin: true,
    path: (c) => `/v1/skus/${c.sku}/restock`,
    body: () => ({ quantity: -5 }),
    field: 'quantity',
  },
  'restock with an Idempotency-Key of 129 characters': {
    admin: true,
    path: (c) => `/v1/skus/${c.sku}/restock`,
    body: () => ({ quantity: 1 }),
    headers: { 'Idempotency-Key': 'k'.repeat(129) },
    field: 'Idempotency-Key',
  },
  'adjustment of 0': {
    admin: true,
    path: (c) => `/v1/skus/${c.sku}/adjustments`,
    body: () => ({ delta: 0, reason: 'x' }),
    field: 'delta',
  },
  'adjustment by "3"': {
    admin: true,
    path: (c) => `/v1/skus/${c.sku}/adjustments`,
    body: () => ({ delta: '3', reason: 'x' }),
    field: 'delta',
  },
  'adjustment without reason': {
    admin: true,
    path: (c) => `/v1/skus/${c.sku}/adjustments`,
    body: () => ({ delta: 1 }),
    field: 'reason',
  },
  'return of quantity 0': {
    admin: true,
    path: () => '/v1/returns',
    body: (c) => ({ reservationId: c.rid, items: [{ sku: c.sku, quantity: 0 }] }),
    field: 'items.0.quantity',
  },
  'return without reservationId': {
    admin: true,
    path: () => '/v1/returns',
    body: (c) => ({ items: [{ sku: c.sku, quantity: 1 }] }),
    field: 'reservationId',
  },
};

describe('malformed requests are 400 INVALID_REQUEST naming the bad field, and change nothing', () => {
  it.each(Object.entries(badCases))('%s', async (_, bad) => {
    const sku = await createSku(10, 'BAD');
    const ctx: Ctx = { sku, rid: uniqueId('bad'), held: '', newSku: uniqueSku('NEVER') };
    let heldView: unknown;
    if (bad.needsHold) {
      const held = await hold([{ sku, quantity: 1 }]);
      ctx.held = held.reservationId;
      heldView = held.view;
    }
    const before = await snapshot(sku);

    const res = await stack.api(bad.method ?? 'POST', bad.path?.(ctx) ?? '/v1/reservations', {
      token: bad.admin ? ADMIN_TOKEN : CLIENT_TOKEN,
      body: bad.body?.(ctx),
      rawBody: bad.rawBody?.(ctx),
      headers: bad.headers,
    });
    expectError(res, 400, 'INVALID_REQUEST');
    expect(res.body.error.details.field).toBe(bad.field);

    expect(await snapshot(sku)).toEqual(before);
    await expectNoReservation(ctx.rid);
    expectError(await stack.api('GET', `/v1/skus/${ctx.newSku}`), 404, 'SKU_NOT_FOUND');
    if (bad.needsHold) {
      const still = await stack.api('GET', `/v1/reservations/${ctx.held}`);
      expect(still.body).toEqual(heldView);
    }
    await expectConsistent(stack.stock, sku);
  });

  it('a commit of more than is held is 422 QUANTITY_EXCEEDS_HOLD (not 400), and the reservation stays HELD', async () => {
    const sku = await createSku(10, 'BAD');
    const other = await createSku(10, 'BAD');
    const { reservationId, view } = await hold([{ sku, quantity: 2 }]);
    const before = await snapshot(sku);
    const more = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, {
      body: { items: [{ sku, quantity: 3 }] },
    });
    expectError(more, 422, 'QUANTITY_EXCEEDS_HOLD');
    expect(more.body.error.details).toEqual({ sku, requested: 3, held: 2 });
    const elsewhere = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, {
      body: { items: [{ sku: other, quantity: 1 }] },
    });
    expectError(elsewhere, 422, 'QUANTITY_EXCEEDS_HOLD');
    expect(await snapshot(sku)).toEqual(before);
    expect((await stack.api('GET', `/v1/reservations/${reservationId}`)).body).toEqual(view);
    // The hold is intact: a fitting commit still works.
    const ok = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, {
      body: { items: [{ sku, quantity: 2 }] },
    });
    expect(ok.body).toMatchObject({
      status: 'COMMITTED',
      items: [{ sku, quantity: 2, committedQuantity: 2, returnedQuantity: 0 }],
    });
    await expectConsistent(stack.stock, sku);
  });

  it('a body over 64 KiB is 413 PAYLOAD_TOO_LARGE and changes nothing', async () => {
    const sku = await createSku(10, 'BIG');
    const rid = uniqueId('big');
    const before = await snapshot(sku);
    const res = await stack.api('POST', '/v1/reservations', {
      body: { reservationId: rid, items: [{ sku, quantity: 1 }], customerId: 'x'.repeat(70_000) },
    });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    const restock = await stack.admin('POST', `/v1/skus/${sku}/restock`, {
      body: { quantity: 1, reason: 'r'.repeat(66_000) },
    });
    expectError(restock, 413, 'PAYLOAD_TOO_LARGE');
    expect(await snapshot(sku)).toEqual(before);
    await expectNoReservation(rid);
  });
});

// ------------------------------------------------------------------ authentication

describe('authentication and roles', () => {
  it.each([
    ['no Authorization header', null],
    ['an unknown token', 'Bearer not-a-token'],
    ['a Basic header', `Basic ${Buffer.from(`x:${CLIENT_TOKEN}`).toString('base64')}`],
    ['the token without the Bearer scheme', CLIENT_TOKEN],
    ['Bearer with no token', 'Bearer '],
    ['Bearer with two tokens', `Bearer ${CLIENT_TOKEN} ${CLIENT_TOKEN}`],
    ['a token with a suffix', `Bearer ${CLIENT_TOKEN}x`],
  ])('401 UNAUTHENTICATED with %s, on client and admin endpoints', async (_, authorization) => {
    const sku = await createSku(5, 'AUTH');
    const headers: Record<string, string> = authorization === null ? {} : { authorization };
    const before = await snapshot(sku);
    const rid = uniqueId('auth');
    for (const [method, path, body] of [
      ['GET', `/v1/skus/${sku}`, undefined],
      ['GET', `/v1/availability?skus=${sku}`, undefined],
      ['POST', '/v1/reservations', { reservationId: rid, items: [{ sku, quantity: 1 }] }],
      ['GET', `/v1/reservations/${rid}`, undefined],
      ['POST', `/v1/skus/${sku}/restock`, { quantity: 1 }],
      ['GET', `/v1/skus/${sku}/movements`, undefined],
    ] as const) {
      const res = await stack.api(method, path, { token: null, headers, body });
      expectError(res, 401, 'UNAUTHENTICATED');
    }
    expect(await snapshot(sku)).toEqual(before);
    await expectNoReservation(rid);
  });

  it('authentication comes before the body: 401/403 whatever the body is (invalid JSON, over 64 KiB)', async () => {
    const sku = await createSku(5, 'AUTH');
    const before = await snapshot(sku);
    const invalid = '{"items": [';
    const huge = JSON.stringify({ items: [{ sku, quantity: 1 }], customerId: 'x'.repeat(70_000) });
    expectError(await stack.api('POST', '/v1/reservations', { token: null, rawBody: invalid }), 401, 'UNAUTHENTICATED');
    expectError(
      await stack.api('POST', '/v1/reservations', { token: 'not-a-token', rawBody: huge }),
      401,
      'UNAUTHENTICATED',
    );
    expectError(
      await stack.api('POST', `/v1/skus/${sku}/restock`, { token: CLIENT_TOKEN, rawBody: invalid }),
      403,
      'FORBIDDEN',
    );
    expectError(
      await stack.api('POST', `/v1/skus/${sku}/restock`, { token: CLIENT_TOKEN, rawBody: huge }),
      403,
      'FORBIDDEN',
    );
    expect(await snapshot(sku)).toEqual(before);
  });

  it('403 FORBIDDEN for the client token on every admin endpoint, changing nothing', async () => {
    const sku = await createSku(5, 'AUTH');
    const { reservationId } = await hold([{ sku, quantity: 1 }]);
    await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} });
    const newSku = uniqueSku('NEVER');
    const before = await snapshot(sku);
    for (const [method, path, body] of [
      ['POST', '/v1/skus', { sku: newSku, total: 1 }],
      ['POST', `/v1/skus/${sku}/restock`, { quantity: 1 }],
      ['POST', `/v1/skus/${sku}/adjustments`, { delta: -1, reason: 'x' }],
      ['GET', `/v1/skus/${sku}/holds`, undefined],
      ['GET', `/v1/skus/${sku}/movements`, undefined],
      ['POST', '/v1/returns', { reservationId, items: [{ sku, quantity: 1 }] }],
    ] as const) {
      expectError(await stack.api(method, path, { token: CLIENT_TOKEN, body }), 403, 'FORBIDDEN');
    }
    expect(await snapshot(sku)).toEqual(before);
    expectError(await stack.api('GET', `/v1/skus/${newSku}`), 404, 'SKU_NOT_FOUND');
  });

  it('the admin token is accepted on client endpoints', async () => {
    const sku = await createSku(5, 'AUTH');
    expect((await stack.admin('GET', `/v1/skus/${sku}`)).status).toBe(200);
    expect((await stack.admin('GET', `/v1/availability?skus=${sku}`)).status).toBe(200);
    const created = await stack.admin('POST', '/v1/reservations', { body: { items: [{ sku, quantity: 2 }] } });
    expect(created.status).toBe(201);
    const id = created.body.reservationId as string;
    expect((await stack.admin('GET', `/v1/reservations/${id}`)).body.status).toBe('HELD');
    expect((await stack.admin('POST', `/v1/reservations/${id}/extend`, { body: { ttlSeconds: 120 } })).status).toBe(
      200,
    );
    expect((await stack.admin('POST', `/v1/reservations/${id}/commit`, { body: {} })).body.status).toBe('COMMITTED');
    const cancelled = await stack.admin('POST', '/v1/reservations', { body: { items: [{ sku, quantity: 1 }] } });
    expect(
      (await stack.admin('POST', `/v1/reservations/${cancelled.body.reservationId}/cancel`, { body: {} })).body.status,
    ).toBe('CANCELLED');
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0 });
  });
});

// ------------------------------------------------------------------ service endpoints

describe('service endpoints', () => {
  it('/healthz answers 200 {status: ok} without a token', async () => {
    const res = await stack.api('GET', '/healthz', { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with every check ok, without a token', async () => {
    const res = await stack.api('GET', '/readyz', { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', checks: { redis: 'ok', postgres: 'ok', temporal: 'ok' } });
  });

  it('/metrics is Prometheus text with the request-duration histogram, without a token', async () => {
    await stack.api('GET', '/healthz', { token: null });
    const res = await stack.api('GET', '/metrics', { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.text).toContain('# TYPE stockhold_http_request_duration_seconds histogram');
    expect(res.text).toMatch(/^stockhold_http_request_duration_seconds_count\{[^}]*route="\/healthz"[^}]*\} \d+/m);
  });

  it('an unknown route is 404 with the error shape', async () => {
    expectError(await stack.api('GET', '/v1/nothing-here'), 404, 'NOT_FOUND');
    expectError(await stack.api('DELETE', '/v1/skus/ABC', { token: ADMIN_TOKEN }), 404, 'NOT_FOUND');
    expectError(await stack.api('GET', '/', { token: null }), 404, 'NOT_FOUND');
  });
});

// ------------------------------------------------------------------ the Temporal side

describe('the Temporal contract', () => {
  it('a HELD reservation is findable by ReservationStatus and InventorySkus; after commit by ReservationStatus="COMMITTED"', async () => {
    const sku = await createSku(5, 'VIS');
    const { reservationId } = await hold([{ sku, quantity: 1 }], { customerId: 'cust-vis' });
    const workflowId = workflowIdOf(reservationId);
    await expectVisible(`ReservationStatus="HELD" AND InventorySkus="${sku}"`, workflowId);
    await expectVisible(`CustomerId="cust-vis" AND InventorySkus="${sku}"`, workflowId);
    const description = await stack.env.client.workflow.getHandle(workflowId).describe();
    expect(description.type).toBe('reservationWorkflow');
    expect(description.taskQueue).toBe(stack.taskQueue);

    expect((await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} })).status).toBe(200);
    await expectVisible(`ReservationStatus="COMMITTED" AND InventorySkus="${sku}"`, workflowId);
    expect(await workflowIds(`ReservationStatus="HELD" AND InventorySkus="${sku}"`)).not.toContain(workflowId);
  });

  it('the payment service path: a paymentSucceeded signal commits the reservation', async () => {
    const sku = await createSku(5, 'PAY');
    const { reservationId } = await hold([{ sku, quantity: 2 }]);
    const handle = stack.env.client.workflow.getHandle(workflowIdOf(reservationId));
    await handle.signal(paymentSucceededSignal, { paymentId: 'p' });
    const res = await pollReservation(reservationId, 'COMMITTED');
    expect(res.body).toMatchObject({
      status: 'COMMITTED',
      items: [{ sku, quantity: 2, committedQuantity: 2, returnedQuantity: 0 }],
    });
    // A late duplicate, once the run has closed, is refused by Temporal (WorkflowNotFoundError) and changes nothing.
    expect((await handle.result()).status).toBe('COMMITTED');
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    await expect(handle.signal(paymentSucceededSignal, { paymentId: 'p' })).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    const again = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(res.body);
    expect(await stockOf(sku)).toMatchObject({ total: 3, reserved: 0, available: 3 });
    expect((await movements(sku)).filter((m) => m.kind === 'sale')).toEqual([
      expect.objectContaining({ delta: -2, reservationId }),
    ]);
    await expectConsistent(stack.stock, sku);
  });
});

describe('the longest cart the contract allows', () => {
  it("a 50-line cart of 64-character SKUs is 201 HELD, and its InventorySkus holds the first SKUs that fit in Temporal's 2 KB", async () => {
    const skus = Array.from({ length: 50 }, (_, i) =>
      `CART${String(i).padStart(2, '0')}-${randomUUID()}`.padEnd(64, 'x'),
    );
    for (const sku of skus) {
      expect((await stack.admin('POST', '/v1/skus', { body: { sku, total: 2 } })).status).toBe(201);
    }
    const items = skus.map((sku) => ({ sku, quantity: 1 }));
    const { reservationId, view } = await hold(items);
    expect(view.items).toHaveLength(50);

    const workflowId = workflowIdOf(reservationId);
    const kept = (await stack.env.client.workflow.getHandle(workflowId).describe()).typedSearchAttributes.get(
      searchAttributes.skus,
    );
    expect(kept).toBeDefined();
    // The first SKUs of the cart, as many as fit in 2 KB (30 of 64 characters at most, as a JSON list).
    expect(kept).toEqual(skus.slice(0, kept!.length));
    expect(Buffer.byteLength(JSON.stringify(kept))).toBeLessThanOrEqual(2_048);
    expect(kept!.length).toBeGreaterThanOrEqual(29);
    await expectVisible(`InventorySkus="${skus[0]}"`, workflowId);

    const committed = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} });
    expect({ status: committed.status, reservationStatus: committed.body.status }).toEqual({
      status: 200,
      reservationStatus: 'COMMITTED',
    });
    for (const sku of [skus[0]!, skus[49]!]) {
      expect(await stockOf(sku)).toMatchObject({ total: 1, reserved: 0 });
      await expectConsistent(stack.stock, sku);
    }
  });
});

// ------------------------------------------------------------------ views, counters and messages

describe('what clients read back', () => {
  it('a reservation stays readable from PostgreSQL after Temporal dropped its closed workflow, returns included', async () => {
    const sku = await createSku(5, 'GONE');
    const { reservationId } = await hold([{ sku, quantity: 3 }], { customerId: 'cust-gone' });
    expect((await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} })).status).toBe(200);
    const returned = await stack.admin('POST', '/v1/returns', {
      body: { reservationId, items: [{ sku, quantity: 1 }] },
    });
    expect(returned.status).toBe(200);
    // While Temporal has the workflow, the view already shows the return (recorded after it closed).
    const live = await stack.api('GET', `/v1/reservations/${reservationId}`);
    expect(live.body.items).toEqual([{ sku, quantity: 3, committedQuantity: 3, returnedQuantity: 1 }]);

    // What the namespace's retention does to a closed workflow.
    const workflowId = workflowIdOf(reservationId);
    await stack.env.client.workflowService.deleteWorkflowExecution({
      namespace: 'default',
      workflowExecution: { workflowId },
    });
    await pollUntil(
      () =>
        stack.env.client.workflow
          .getHandle(workflowId)
          .describe()
          .then(
            () => 'there',
            () => 'gone',
          ),
      (state) => state === 'gone',
    );
    const res = await stack.api('GET', `/v1/reservations/${reservationId}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      reservationId,
      status: 'COMMITTED',
      items: [{ sku, quantity: 3, committedQuantity: 3, returnedQuantity: 1 }],
      customerId: 'cust-gone',
      expiresAt: expect.any(String),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      workflowId,
    });
  });

  it('/metrics counts a repeated POST /v1/reservations as a repeat, not as a new HELD reservation', async () => {
    const count = async (outcome: string) => {
      const text = (await stack.api('GET', '/metrics', { token: null })).text;
      const line = text
        .split('\n')
        .find((l) => l.startsWith(`stockhold_reservation_results_total{outcome="${outcome}"}`));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const sku = await createSku(5, 'MET');
    const [held, repeats] = [await count('HELD'), await count('REPEAT')];
    const body = { reservationId: uniqueId('met'), items: [{ sku, quantity: 1 }] };
    expect((await reserve(body)).status).toBe(201);
    expect((await reserve(body)).status).toBe(200);
    expect(await count('HELD')).toBe(held + 1);
    expect(await count('REPEAT')).toBe(repeats + 1);
  });

  it('a JSON body sent without its Content-Type is 400 saying the content type is missing', async () => {
    const sku = await createSku(5, 'CT');
    const res = await stack.api('POST', '/v1/reservations', {
      rawBody: JSON.stringify({ items: [{ sku, quantity: 1 }] }),
      headers: { 'content-type': '' },
    });
    expectError(res, 400, 'INVALID_REQUEST');
    expect(res.body.error.message).toMatch(/Content-Type is missing/);
    const typed = await stack.api('POST', '/v1/reservations', {
      rawBody: JSON.stringify({ items: [{ sku, quantity: 1 }] }),
      headers: { 'content-type': 'text/plain' },
    });
    expect(typed.body.error.message).toMatch(/Content-Type must be application\/json, not text\/plain/);
    expect(await stockOf(sku)).toMatchObject({ reserved: 0 });
  });
});
