/**
 * Webhooks as a newcomer meets them: subscribe a real HTTP receiver through the API, change stock
 * through the HTTP API, and every event arrives, signed, in order, once per id after deduplication.
 *
 * The whole service runs for real: a Temporal dev server, the API in this process (`startApi`, which
 * also starts the webhook dispatcher workflow), a worker as its own OS process (`node lib/worker.js`,
 * reservation workflows and the dispatcher), a PostgreSQL database and a redis-server of this file's
 * own, and node:http receivers. The worker runs with WEBHOOK_TIMEOUT_MS=1000 and
 * WEBHOOK_RETRY_DELAYS_MS=200,400,800 (the contract's 10 s and 5 s, 30 s… schedule, shortened).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { verifySignature } from '../../src/webhooks/signature';
import { startApi, type RunningApi } from '../../src/api/server';
import { loadConfig } from '../../src/config';
import { createRedis, keys } from '../../src/stock';
import { readEvents } from '../../src/stock/outbox';
import { uniqueId, uniqueSku } from '../helpers/env';
import { buildIfStale, killWorkers, spawnWorker, waitUntilPolling, WORKER_JS } from '../helpers/processes';
import { startRedisServer, type RedisServer } from '../helpers/redis-server';
import { pollUntil, request, type ApiAnswer } from '../helpers/stack';
import { devServerEnv, taskQueue } from '../helpers/temporal';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import {
  closeReceivers,
  deliveredIds,
  startReceiver,
  type Behaviour,
  type DeliveredEvent,
  type Receiver,
} from '../helpers/webhook-receiver';

const ADMIN = 'e2e-admin-token-0123456789';
const CLIENT = 'e2e-client-token-0123456789';

let env: TestWorkflowEnvironment | undefined;
let database: TestDatabase | undefined;
let redisServer: RedisServer | undefined;
let api: RunningApi | undefined;

beforeAll(async () => {
  buildIfStale(WORKER_JS);
  [database, redisServer, env] = await Promise.all([
    createTestDatabase('stockhold_webhooks_e2e'),
    startRedisServer(),
    devServerEnv(),
  ]);
  // The database is empty, so empty counters are complete: mark them loaded (as global-setup does).
  const redis = createRedis(redisServer.url);
  try {
    await redis.set(keys.loaded, 'webhooks e2e test setup');
  } finally {
    await redis.quit();
  }
  const queue = taskQueue('webhooks-e2e');
  const settings = {
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: queue,
    REDIS_URL: redisServer.url,
    DATABASE_URL: database.url,
  };
  const worker = spawnWorker({ ...settings, WEBHOOK_TIMEOUT_MS: '1000', WEBHOOK_RETRY_DELAYS_MS: '200,400,800' });
  api = await startApi(
    loadConfig({
      ...settings,
      PORT: '0',
      INVENTORY_ADMIN_TOKEN: ADMIN,
      INVENTORY_API_TOKEN: CLIENT,
      LOG_LEVEL: 'warn',
    }),
  );
  await waitUntilPolling(worker, env.client, queue, { timeoutMs: 60_000 });
}, 150_000);

afterAll(async () => {
  await api?.close(1_000);
  killWorkers();
  await closeReceivers();
  await env?.teardown();
  await Promise.allSettled([database?.drop(), redisServer?.stop()]);
}, 60_000);

// ---------------------------------------------------------------- the API, as a client calls it

const asAdmin = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  request(api!.url, method, path, { token: ADMIN, body, headers });
const asClient = (method: string, path: string, body?: unknown) =>
  request(api!.url, method, path, { token: CLIENT, body });

/** A receiver subscribed to every event type through the API (201, with the generated secret). */
async function subscribedReceiver(behaviour?: Behaviour): Promise<{ receiver: Receiver; id: string; secret: string }> {
  const receiver = await startReceiver(behaviour);
  const res = await asAdmin('POST', '/v1/webhooks', { url: receiver.url, events: ['*'] });
  expect(res.status).toBe(201);
  expect(res.body).toEqual(
    expect.objectContaining({
      url: receiver.url,
      events: ['*'],
      secret: expect.stringMatching(/^whsec_[0-9a-f]{64}$/),
    }),
  );
  return { receiver, id: res.body.id as string, secret: res.body.secret as string };
}

/** Deletes the subscription through the API (so it gets nothing of the next test) and closes its receiver. */
async function unsubscribe(sub: { receiver: Receiver; id: string }): Promise<void> {
  expect((await asAdmin('DELETE', `/v1/webhooks/${sub.id}`)).status).toBe(204);
  await sub.receiver.close();
}

const hold = (reservationId: string, sku: string, quantity: number) =>
  asClient('POST', '/v1/reservations', { reservationId, items: [{ sku, quantity }] });
const restock = (sku: string, quantity: number) =>
  asAdmin(
    'POST',
    `/v1/skus/${sku}/restock`,
    { quantity, reason: 'delivery' },
    { 'Idempotency-Key': uniqueId('restock') },
  );

type Expected = [type: string, available: number | null];

/** One change made through the API, the answer it must get, and the events it must cause (in order). */
interface Step {
  what: string;
  run: () => Promise<ApiAnswer>;
  status: number;
  events: Expected[];
  /** The reservation the step's reservation event is about, and the status it shows. */
  reservation?: { id: string; status: string };
}

/** What a step was observed to do: its events' count and `available` as GET /v1/skus/:sku read it after the step. */
interface Observed {
  step: Step;
  available: number;
}

/**
 * Runs the steps one after the other. After each, waits until the outbox holds its events (a
 * hold's row, and so its event, may be written just after the 201), so the next step's events
 * come after them; then reads the stock through the API.
 */
async function runSteps(sku: string, steps: Step[]): Promise<Observed[]> {
  const observed: Observed[] = [];
  let count = 0;
  for (const step of steps) {
    const res = await step.run();
    expect({ step: step.what, status: res.status }).toEqual({ step: step.what, status: step.status });
    count += step.events.length;
    const written = await pollUntil(
      () => readEvents(api!.stock.db, { sku, limit: 500 }),
      (events) => events.length >= count,
      10_000,
      50,
    );
    expect({ step: step.what, events: written.length }).toEqual({ step: step.what, events: count });
    const stock = await asClient('GET', `/v1/skus/${sku}`);
    expect(stock.status).toBe(200);
    observed.push({ step, available: stock.body.available as number });
  }
  return observed;
}

const availableOf = (e: DeliveredEvent): number | null =>
  e.type.startsWith('stock.') ? (e.data.available as number) : null;

/**
 * Checks what `receiver` got for the subscription with `secret` against the steps: every request
 * signed and carrying its event's id in Stockhold-Event-Id; repeats (at least once) identical; after
 * dedupe by id, exactly the SKU's events of PostgreSQL's outbox in seq order, which are the steps'
 * expected events; createdAt never decreasing; each stock event's `available` what the API showed
 * after its step; each reservation event about its step's reservation. Returns the deduped events.
 */
async function expectDelivered(
  receiver: Receiver,
  secret: string,
  sku: string,
  observed: Observed[],
): Promise<DeliveredEvent[]> {
  for (const r of receiver.requests) {
    expect({
      id: r.event.id,
      signed: verifySignature(secret, r.raw, r.headers['stockhold-signature'] as string | undefined),
    }).toEqual({ id: r.event.id, signed: true });
    expect(r.headers['stockhold-event-id']).toBe(r.event.id);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
  }
  const first = new Map<string, string>();
  for (const r of receiver.requests) {
    if (!first.has(r.event.id)) first.set(r.event.id, r.raw);
    expect(r.raw).toBe(first.get(r.event.id)); // a repeat carries the same event
  }
  const events = [...first.values()].map((raw) => JSON.parse(raw) as DeliveredEvent);

  const outbox = await readEvents(api!.stock.db, { sku, limit: 500 });
  expect(events.map((e) => [e.id, e.type])).toEqual(outbox.map((e) => [e.id, e.type]));
  expect(events.map((e) => e.createdAt)).toEqual(outbox.map((e) => e.createdAt));
  expect(events.map((e) => [e.type, availableOf(e)])).toEqual(observed.flatMap((o) => o.step.events));
  for (let i = 1; i < events.length; i++)
    expect(Date.parse(events[i]!.createdAt)).toBeGreaterThanOrEqual(Date.parse(events[i - 1]!.createdAt));

  let at = 0;
  for (const { step, available } of observed) {
    for (const e of events.slice(at, at + step.events.length)) {
      const context = { step: step.what, type: e.type };
      if (e.type.startsWith('stock.')) {
        expect({ ...context, sku: e.data.sku, available: e.data.available }).toEqual({ ...context, sku, available });
      } else {
        expect({ ...context, reservationId: e.data.reservationId, status: e.data.status }).toEqual({
          ...context,
          reservationId: step.reservation?.id,
          status: step.reservation?.status,
        });
      }
    }
    at += step.events.length;
  }
  return events;
}

const expectedCount = (steps: Step[]) => steps.reduce((n, s) => n + s.events.length, 0);

// ---------------------------------------------------------------- the tests

describe('webhooks end to end through the HTTP API (dev server, worker process, API, real Redis, PostgreSQL and HTTP receivers)', () => {
  it('a restock, reservations, their commits and a cancel made through the HTTP API reach a subscribed receiver as signed events, in order, each with a unique id', async () => {
    const sub = await subscribedReceiver();
    const { receiver } = sub;
    const sku = uniqueSku('E2E');
    const [a, b, c] = [uniqueId('e2e-a'), uniqueId('e2e-b'), uniqueId('e2e-c')];
    // Threshold 2; available after each step: 5, 5, 8, 4, 4, 1, 0, 1, 1.
    const steps: Step[] = [
      {
        what: 'create 5',
        run: () => asAdmin('POST', '/v1/skus', { sku, total: 5, name: 'boots' }),
        status: 201,
        events: [['stock.changed', 5]],
      },
      {
        what: 'threshold 2',
        run: () => asAdmin('PATCH', `/v1/skus/${sku}`, { lowStockThreshold: 2 }),
        status: 200,
        events: [],
      }, // settings write no event
      { what: 'restock 3', run: () => restock(sku, 3), status: 200, events: [['stock.changed', 8]] },
      {
        what: 'hold A 4',
        run: () => hold(a, sku, 4),
        status: 201,
        events: [['reservation.held', null]],
        reservation: { id: a, status: 'HELD' },
      },
      {
        what: 'commit A',
        run: () => asClient('POST', `/v1/reservations/${a}/commit`, { paymentId: 'pay-a' }),
        status: 200,
        events: [
          ['stock.changed', 4],
          ['reservation.committed', null],
        ], // the sale: total 4, nothing held
        reservation: { id: a, status: 'COMMITTED' },
      },
      {
        what: 'hold B 3',
        run: () => hold(b, sku, 3),
        status: 201,
        events: [
          ['reservation.held', null],
          ['stock.low', 1],
        ],
        reservation: { id: b, status: 'HELD' },
      },
      {
        what: 'hold C 1',
        run: () => hold(c, sku, 1),
        status: 201,
        events: [
          ['reservation.held', null],
          ['stock.sold_out', 0],
        ],
        reservation: { id: c, status: 'HELD' },
      },
      {
        what: 'cancel C',
        run: () => asClient('POST', `/v1/reservations/${c}/cancel`, { reason: 'changed my mind' }),
        status: 200,
        events: [
          ['reservation.cancelled', null],
          ['stock.back_in_stock', 1],
        ],
        reservation: { id: c, status: 'CANCELLED' },
      },
      {
        what: 'commit B',
        run: () => asClient('POST', `/v1/reservations/${b}/commit`),
        status: 200,
        events: [
          ['stock.changed', 1],
          ['reservation.committed', null],
        ],
        reservation: { id: b, status: 'COMMITTED' },
      },
    ];
    const observed = await runSteps(sku, steps);
    expect(observed.map((o) => o.available)).toEqual([5, 5, 8, 4, 4, 1, 0, 1, 1]);

    await pollUntil(
      async () => deliveredIds(receiver).size,
      (n) => n >= expectedCount(steps),
      20_000,
      100,
    );
    const events = await expectDelivered(receiver, sub.secret, sku, observed);
    expect(events.map((e) => [e.type, availableOf(e)])).toEqual([
      ['stock.changed', 5], // initial
      ['stock.changed', 8], // restock
      ['reservation.held', null], // A: 8 → 4
      ['stock.changed', 4], // A's sale
      ['reservation.committed', null],
      ['reservation.held', null], // B: 4 → 1
      ['stock.low', 1],
      ['reservation.held', null], // C: 1 → 0
      ['stock.sold_out', 0],
      ['reservation.cancelled', null], // C: 0 → 1
      ['stock.back_in_stock', 1],
      ['stock.changed', 1], // B's sale
      ['reservation.committed', null],
    ]);
    expect(events.map((e) => (e.data.movement as { kind: string } | undefined)?.kind ?? null)).toEqual([
      'initial',
      'restock',
      null,
      'sale',
      null,
      null,
      null,
      null,
      null,
      null,
      null,
      'sale',
      null,
    ]);
    await unsubscribe(sub);
  }, 40_000);

  it('a receiver that answers 500 to its first 3 requests still gets every event in order, and the deliveries API shows them delivered', async () => {
    const sub = await subscribedReceiver((n) => ({ status: n < 3 ? 500 : 204 }));
    const { receiver } = sub;
    const sku = uniqueSku('E2E-R');
    const d = uniqueId('e2e-d');
    const steps: Step[] = [
      {
        what: 'create 2',
        run: () => asAdmin('POST', '/v1/skus', { sku, total: 2 }),
        status: 201,
        events: [['stock.changed', 2]],
      },
      {
        what: 'hold D 2',
        run: () => hold(d, sku, 2),
        status: 201,
        events: [
          ['reservation.held', null],
          ['stock.sold_out', 0],
        ],
        reservation: { id: d, status: 'HELD' },
      },
      {
        what: 'commit D',
        run: () => asClient('POST', `/v1/reservations/${d}/commit`),
        status: 200,
        events: [
          ['stock.changed', 0],
          ['reservation.committed', null],
        ],
        reservation: { id: d, status: 'COMMITTED' },
      },
      {
        what: 'restock 4',
        run: () => restock(sku, 4),
        status: 200,
        events: [
          ['stock.changed', 4],
          ['stock.back_in_stock', 4],
        ],
      },
    ];
    const observed = await runSteps(sku, steps);
    const count = expectedCount(steps);

    await pollUntil(
      async () => deliveredIds(receiver).size,
      (n) => n >= count,
      20_000,
      100,
    );
    const events = await expectDelivered(receiver, sub.secret, sku, observed);
    // The first event was refused three times, and nothing after it was sent meanwhile.
    expect(receiver.requests.slice(0, 4).map((r) => [r.event.id, r.status])).toEqual([
      [events[0]!.id, 500],
      [events[0]!.id, 500],
      [events[0]!.id, 500],
      [events[0]!.id, 204],
    ]);

    const listed = await pollUntil(
      () => asAdmin('GET', `/v1/webhooks/${sub.id}/deliveries`),
      (res) =>
        res.status === 200 &&
        (res.body.deliveries as { status: string }[]).filter((x) => x.status === 'delivered').length === count,
      5_000,
      100,
    );
    expect(listed.status).toBe(200);
    // Newest event first.
    expect(listed.body.deliveries).toEqual(
      [...events].reverse().map((e, i) =>
        expect.objectContaining({
          eventId: e.id,
          type: e.type,
          status: 'delivered',
          attempts: i === count - 1 ? 4 : 1,
          lastError: null,
          nextAttemptAt: null,
        }),
      ),
    );
    await unsubscribe(sub);
  }, 30_000);
});
