/**
 * PATCH /v1/skus/:sku and the API's own refusals for per-customer limits, over HTTP to the real
 * app with real Redis and PostgreSQL; Temporal points at nothing, so every refusal here is
 * answered before a workflow would start (a request that reached Temporal would be a 503).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { createApp } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics/registry';
import { ReservationService } from '../../src/api/reservations/service';
import { keys } from '../../src/stock';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expiresIn, newSku, storeChecks, testStock } from '../helpers/stock';
import { WebhookStore } from '../../src/webhooks/store';

const ADMIN = 'sku-settings-admin-token';
const CLIENT = 'sku-settings-client-token';

const clients = testStock();
const { stock } = clients;
const connection = Connection.lazy({ address: '127.0.0.1:1', interceptors: [] });
const app = createApp({
  config: { adminToken: ADMIN, apiToken: CLIENT, maxTtlSeconds: 86_400 },
  stock,
  webhooks: new WebhookStore(clients.db),
  reservations: new ReservationService(new Client({ connection }), stock, {
    taskQueue: 'sku-settings',
    defaultTtlSeconds: 600,
    maxTtlSeconds: 86_400,
  }),
  metrics: createMetrics(),
  logger: pino({ level: 'silent' }),
  checks: storeChecks(clients),
});
const server = createServer(app);
let url = '';

beforeAll(
  () =>
    new Promise<void>((resolve) =>
      server.listen(
        0,
        '127.0.0.1',
        () => ((url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`), resolve()),
      ),
    ),
);

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await connection.close();
  await clients.close();
});

async function send(method: string, path: string, body: unknown, token = ADMIN) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Everything a refused PATCH could have changed. */
async function settingsOf(sku: string) {
  const row = await clients.db.query('SELECT name, low_stock_threshold, max_per_customer FROM skus WHERE sku = $1', [
    sku,
  ]);
  return {
    row: row.rows[0],
    redis: await clients.redis.hgetall(keys.stock(sku)),
    customers: await clients.redis.hgetall(keys.customers(sku)),
  };
}

describe('PATCH /v1/skus/:sku', () => {
  it('answers the stock view with the new settings; GET and availability show them', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 8, 'before');
    const res = await send('PATCH', `/v1/skus/${sku}`, { name: 'after', lowStockThreshold: 2, maxPerCustomer: 1 });
    expect(res).toEqual({
      status: 200,
      body: { sku, name: 'after', total: 8, reserved: 0, available: 8, lowStockThreshold: 2, maxPerCustomer: 1 },
    });
    expect((await send('GET', `/v1/skus/${sku}`, undefined, CLIENT)).body).toEqual(res.body);
    expect((await send('GET', `/v1/availability?skus=${sku}`, undefined, CLIENT)).body.items).toEqual([res.body]);
    expect(
      (await send('PATCH', `/v1/skus/${sku}`, { maxPerCustomer: null, lowStockThreshold: null })).body,
    ).toMatchObject({
      name: 'after',
      lowStockThreshold: null,
      maxPerCustomer: null,
    });
  });

  it.each([
    ['an empty body', {}, '(body)'],
    ['a limit of 0', { maxPerCustomer: 0 }, 'maxPerCustomer'],
    ['a limit above 10000', { maxPerCustomer: 10_001 }, 'maxPerCustomer'],
    ['a fractional limit', { maxPerCustomer: 1.5 }, 'maxPerCustomer'],
    ['a limit as text', { maxPerCustomer: '2' }, 'maxPerCustomer'],
    ['a negative threshold', { lowStockThreshold: -1 }, 'lowStockThreshold'],
    ['a threshold above 2^31-1', { lowStockThreshold: 2 ** 31 }, 'lowStockThreshold'],
    ['an empty name', { name: '' }, 'name'],
    ['a null name', { name: null }, 'name'],
    ['an unknown field', { maxPerCustomer: 2, total: 5 }, 'total'],
    ['a valid field beside a bad one', { name: 'ok', maxPerCustomer: -3 }, 'maxPerCustomer'],
  ])('%s is 400 INVALID_REQUEST naming the field, and changes nothing', async (_, body, field) => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5, 'kept');
    await stock.updateSku(sku, { maxPerCustomer: 3, lowStockThreshold: 1 });
    const before = await settingsOf(sku);
    const res = await send('PATCH', `/v1/skus/${sku}`, body);
    expect({ status: res.status, code: res.body.error?.code, field: res.body.error?.details?.field }).toEqual({
      status: 400,
      code: 'INVALID_REQUEST',
      field,
    });
    expect(await settingsOf(sku)).toEqual(before);
  });

  it('an unknown SKU is 404 SKU_NOT_FOUND; the client token is 403', async () => {
    expect((await send('PATCH', `/v1/skus/${uniqueSku('NONE')}`, { maxPerCustomer: 1 })).body.error.code).toBe(
      'SKU_NOT_FOUND',
    );
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    const res = await send('PATCH', `/v1/skus/${sku}`, { maxPerCustomer: 1 }, CLIENT);
    expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect((await stock.getStock(sku)).maxPerCustomer).toBeNull();
  });
});

describe('POST /v1/reservations on a SKU limited per customer', () => {
  it('without a customerId is 400 INVALID_REQUEST naming customerId, before any workflow starts', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    await stock.updateSku(sku, { maxPerCustomer: 1 });
    const res = await send('POST', '/v1/reservations', { items: [{ sku, quantity: 1 }] }, CLIENT);
    expect({ status: res.status, code: res.body.error.code, field: res.body.error.details.field }).toEqual({
      status: 400,
      code: 'INVALID_REQUEST',
      field: 'customerId',
    });
  });

  it('beyond what the customer holds and bought is 409 CUSTOMER_LIMIT_EXCEEDED with its details, from Redis', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    await stock.updateSku(sku, { maxPerCustomer: 2 });
    const sold = uniqueId();
    await stock.hold({ reservationId: sold, items: [{ sku, quantity: 1 }], customerId: 'uma', expiresAt: expiresIn() });
    await stock.commit(sold);
    await stock.hold({
      reservationId: uniqueId(),
      items: [{ sku, quantity: 1 }],
      customerId: 'uma',
      expiresAt: expiresIn(),
    });
    const res = await send('POST', '/v1/reservations', { items: [{ sku, quantity: 1 }], customerId: 'uma' }, CLIENT);
    expect(res).toEqual({
      status: 409,
      body: {
        error: {
          code: 'CUSTOMER_LIMIT_EXCEEDED',
          message: expect.any(String),
          details: { sku, customerId: 'uma', limit: 2, held: 1, bought: 1, requested: 1 },
        },
      },
    });
  });
});
