/**
 * Webhook delivery end to end: a real Temporal dev server, the dispatcher workflow on a worker that
 * runs as its own OS process (`node lib/worker.js`, so it can be killed), a PostgreSQL database of
 * this file's own, and real HTTP receivers (node:http on spare ports). Events are inserted into
 * `events` as the outbox commits them; the fan-out trigger makes the deliveries.
 *
 * The worker runs with WEBHOOK_TIMEOUT_MS=1000 (the contract's 10 s, shortened) and
 * WEBHOOK_RETRY_DELAYS_MS=200,400,800 (the contract's 5 s, 30 s… schedule, shortened).
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Pool } from 'pg';
import { verifySignature } from '../../src/webhooks/signature';
import { ensureWebhookDispatcher } from '../../src/temporal/deployment';
import { WEBHOOK_DISPATCHER_WORKFLOW_ID } from '../../src/webhooks/workflow';
import { TEST_REDIS_URL, uniqueSku } from '../helpers/env';
import {
  buildIfStale,
  killWorkers,
  spawnWorker as spawnWorkerProcess,
  WORKER_JS,
  type WorkerProcess,
} from '../helpers/processes';
import { gate, waitFor } from '../helpers/client';
import { devServerEnv, taskQueue } from '../helpers/temporal';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { closeReceivers, deliveredIds, startReceiver, type Receiver } from '../helpers/webhook-receiver';

const TIMEOUT_MS = 1_000;

let env: TestWorkflowEnvironment | undefined;
let database: TestDatabase | undefined;
let db: Pool;
let queue = '';

// ---------------------------------------------------------------- the worker process

function spawnWorker(): WorkerProcess {
  return spawnWorkerProcess({
    TEMPORAL_ADDRESS: env!.address,
    TEMPORAL_TASK_QUEUE: queue,
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: database!.url,
    WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
    WEBHOOK_RETRY_DELAYS_MS: '200,400,800',
  });
}

let worker: WorkerProcess;

// ---------------------------------------------------------------- receivers

interface Received {
  eventId: string;
  seq: number;
  skus: string[];
  valid: boolean;
  status: number;
}

/** Event id → its seq and SKUs, as inserted. */
const inserted = new Map<string, { seq: number; skus: string[] }>();

/** What `receiver` got so far, each request checked against `secret` and against the events inserted. */
function received(receiver: Receiver, secret: string): Received[] {
  return receiver.requests.map((r) => {
    const known = inserted.get(r.event.id);
    const valid =
      verifySignature(secret, r.raw, r.headers['stockhold-signature'] as string | undefined) &&
      r.headers['stockhold-event-id'] === r.event.id &&
      typeof r.event.createdAt === 'string' &&
      known !== undefined;
    return { eventId: r.event.id, seq: known?.seq ?? -1, skus: known?.skus ?? [], valid, status: r.status };
  });
}

async function subscribe(url: string, events: string[] = ['*']): Promise<{ id: string; secret: string }> {
  const id = randomUUID();
  const secret = `whsec_${randomUUID()}`;
  await db.query('INSERT INTO webhook_subscriptions (id, url, events, secret) VALUES ($1, $2, $3, $4)', [
    id,
    url,
    events,
    secret,
  ]);
  return { id, secret };
}

/** As DELETE /v1/webhooks/:id does: a finished test's subscription must not receive the next test's events. */
async function unsubscribe(id: string): Promise<void> {
  await db.query('UPDATE webhook_subscriptions SET deleted_at = now() WHERE id = $1', [id]);
  await db.query(
    "UPDATE webhook_deliveries SET status = 'failed', last_error = 'subscription deleted' WHERE subscription_id = $1 AND status = 'pending'",
    [id],
  );
}

/** Commits one event, as the outbox does. */
async function emit(type: string, skus: string[]): Promise<string> {
  const id = randomUUID();
  const { rows } = await db.query<{ seq: string }>(
    'INSERT INTO events (id, type, skus, data) VALUES ($1, $2, $3, $4) RETURNING seq',
    [id, type, skus, { skus }],
  );
  inserted.set(id, { seq: Number(rows[0]!.seq), skus });
  return id;
}

/**
 * The contract's order: when an event is received, every earlier event (lower seq) sharing a SKU
 * with it was received before (at least once). Duplicates are allowed (at least once).
 */
function orderViolations(got: Received[], ids: string[]): string[] {
  const ours = new Set(ids);
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const r of got.filter((x) => ours.has(x.eventId))) {
    for (const id of ids) {
      const e = inserted.get(id)!;
      if (e.seq < r.seq && e.skus.some((s) => r.skus.includes(s)) && !seen.has(id))
        problems.push(`${r.eventId} (seq ${r.seq}) before ${id} (seq ${e.seq})`);
    }
    seen.add(r.eventId);
  }
  return problems;
}

async function statuses(subscription: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM webhook_deliveries WHERE subscription_id = $1 GROUP BY status',
    [subscription],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

interface Delivery {
  status: string;
  attempts: number;
  lastError: string | null;
}

/** Each delivery of a subscription as the database records it: event id → status, attempts, last error. */
async function deliveries(subscription: string): Promise<Map<string, Delivery>> {
  const { rows } = await db.query<{ event_id: string; status: string; attempts: number; last_error: string | null }>(
    'SELECT event_id, status, attempts, last_error FROM webhook_deliveries WHERE subscription_id = $1',
    [subscription],
  );
  return new Map(rows.map((r) => [r.event_id, { status: r.status, attempts: r.attempts, lastError: r.last_error }]));
}

/** The deliveries of `ids`, in that order, as the database has them. */
const of = (all: Map<string, Delivery>, ids: string[]) => ids.map((id) => all.get(id));

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  buildIfStale(WORKER_JS);
  database = await createTestDatabase('stockhold_webhooks');
  db = new Pool({ connectionString: database.url, max: 8 });
  env = await devServerEnv();
  queue = taskQueue('webhooks');
  worker = spawnWorker();
  await ensureWebhookDispatcher(env.client, queue, 20_000);
  // Warm up: the first delivery waits for the worker process to start and pick up the activity.
  const warm = await startReceiver();
  const sub = await subscribe(warm.url);
  await emit('stock.changed', [uniqueSku('W')]);
  await waitFor(
    async () => warm.requests.length,
    (n) => n > 0,
    50,
  );
  await unsubscribe(sub.id);
  await warm.close();
}, 150_000);

afterAll(async () => {
  killWorkers();
  await closeReceivers();
  await env?.teardown();
  await db?.end();
  await database?.drop();
});

describe('webhook delivery (dev server, worker process, real PostgreSQL and HTTP receivers)', () => {
  it('delivers signed events in order per SKU, with the Stockhold-Event-Id header, and records each as delivered', async () => {
    const receiver = await startReceiver();
    const sub = await subscribe(receiver.url);
    const skus = [uniqueSku('A'), uniqueSku('B'), uniqueSku('C')];
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      // Mostly one SKU each, sometimes a two-SKU cart (a reservation event belongs to each SKU).
      const cart = i % 10 === 9 ? [skus[i % 3]!, skus[(i + 1) % 3]!] : [skus[i % 3]!];
      ids.push(await emit(i % 10 === 9 ? 'reservation.held' : 'stock.changed', cart));
      if (i % 5 === 4) await sleep(20); // commits arrive over a while, not all at once
    }
    expect(
      await waitFor(
        () => statuses(sub.id),
        (s) => s.delivered === ids.length,
        100,
      ),
    ).toEqual({ delivered: ids.length });
    expect(deliveredIds(receiver)).toEqual(new Set(ids));
    expect(received(receiver, sub.secret).every((r) => r.valid)).toBe(true);
    expect(orderViolations(received(receiver, sub.secret), ids)).toEqual([]);
    await unsubscribe(sub.id);
    await receiver.close();
  }, 120_000);

  it('retries a receiver that answers 500 for a while, keeping the order; its other SKUs and the other subscriptions go on meanwhile', async () => {
    const r = uniqueSku('R');
    const q = uniqueSku('Q');
    // The failing receiver answers 500 to every event of SKU R until the test says it has
    // recovered; events of SKU Q it takes at once.
    let recovered = false;
    const failing = await startReceiver((_, __, event) => ({
      status: inserted.get(event.id)?.skus.includes(r) && !recovered ? 500 : 200,
    }));
    const sub = await subscribe(failing.url);
    const healthy = await startReceiver();
    const healthySub = await subscribe(healthy.url);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await emit('stock.changed', [i % 2 === 0 ? r : q]));
    const ofR = ids.filter((_, i) => i % 2 === 0);
    const ofQ = ids.filter((_, i) => i % 2 === 1);

    // While R's first event keeps failing (retried: attempts 2 or more), the database shows the
    // failing subscription's Q events delivered and the healthy subscription's every event.
    const meanwhile = await waitFor(
      () => deliveries(sub.id),
      (d) => of(d, ofQ).every((x) => x?.status === 'delivered') && (d.get(ofR[0]!)?.attempts ?? 0) >= 2,
      50,
    );
    expect(of(meanwhile, ofQ).map((d) => d?.status)).toEqual(ofQ.map(() => 'delivered'));
    expect({ status: meanwhile.get(ofR[0]!)?.status, failed: meanwhile.get(ofR[0]!)?.lastError !== null }).toEqual({
      status: 'pending',
      failed: true,
    });
    // Nothing after R's failing event was sent for R: its later events wait, untried.
    expect(of(meanwhile, ofR.slice(1)).map((d) => [d?.status, d?.attempts])).toEqual(
      ofR.slice(1).map(() => ['pending', 0]),
    );
    expect(
      failing.requests.filter((x) => inserted.get(x.event.id)!.skus.includes(r)).every((x) => x.event.id === ofR[0]),
    ).toBe(true);
    expect(
      await waitFor(
        () => statuses(healthySub.id),
        (s) => s.delivered === ids.length,
        50,
      ),
    ).toEqual({ delivered: ids.length });

    // The receiver recovers: R's events follow, in order, and every delivery is recorded delivered.
    recovered = true;
    expect(
      await waitFor(
        () => statuses(sub.id),
        (s) => s.delivered === ids.length,
        100,
      ),
    ).toEqual({ delivered: ids.length });
    expect(
      orderViolations(
        received(failing, sub.secret).filter((x) => x.status === 200),
        ids,
      ),
    ).toEqual([]);
    const first = (await deliveries(sub.id)).get(ofR[0]!)!;
    // Every attempt the receiver saw is counted, the failures included; the last one cleared the error.
    expect(first).toEqual({
      status: 'delivered',
      attempts: failing.requests.filter((x) => x.event.id === ofR[0]).length,
      lastError: null,
    });
    await unsubscribe(sub.id);
    await unsubscribe(healthySub.id);
    await failing.close();
    await healthy.close();
  }, 120_000);

  it('counts a receiver slower than the timeout as a failure and retries; meanwhile its other SKUs, and another subscription, are delivered', async () => {
    const s1 = uniqueSku('S');
    const t = uniqueSku('T');
    // The slow receiver holds every request for an event of SKU S unanswered until the test opens
    // the gate (each attempt outlives the sender's 1 s timeout); events of SKU T it answers at once.
    const answers = gate();
    const slow = await startReceiver((_, __, event) =>
      inserted.get(event.id)?.skus.includes(s1) ? { status: 200, after: answers.wait() } : { status: 200 },
    );
    const sub = await subscribe(slow.url);
    const fast = await startReceiver();
    const fastSub = await subscribe(fast.url);
    const ofS = [
      await emit('stock.low', [s1]),
      await emit('stock.sold_out', [s1]),
      await emit('stock.back_in_stock', [s1]),
    ];
    const ofT = [await emit('stock.low', [t]), await emit('stock.sold_out', [t])];

    // With the slow receiver's first request still unanswered: the database shows its first S
    // event failed for the timeout and retried, its T events delivered, and the fast
    // subscription's every event delivered.
    const meanwhile = await waitFor(
      () => deliveries(sub.id),
      (d) => of(d, ofT).every((x) => x?.status === 'delivered') && (d.get(ofS[0]!)?.attempts ?? 0) >= 2,
      50,
    );
    expect(meanwhile.get(ofS[0]!)).toEqual({
      status: 'pending',
      attempts: expect.any(Number),
      lastError: `no answer within ${TIMEOUT_MS} ms`,
    });
    expect(of(meanwhile, ofS.slice(1)).map((d) => [d?.status, d?.attempts])).toEqual([
      ['pending', 0],
      ['pending', 0],
    ]);
    expect(of(meanwhile, ofT).map((d) => d?.status)).toEqual(['delivered', 'delivered']);
    expect(
      await waitFor(
        () => statuses(fastSub.id),
        (s) => s.delivered === 5,
        50,
      ),
    ).toEqual({ delivered: 5 });

    // Answered at last: the next attempt succeeds, and S's events follow in order.
    answers.open();
    expect(
      await waitFor(
        () => statuses(sub.id),
        (s) => s.delivered === 5,
        100,
      ),
    ).toEqual({ delivered: 5 });
    const done = await deliveries(sub.id);
    expect(of(done, ofS).map((d) => d?.attempts)).toEqual([
      slow.requests.filter((x) => x.event.id === ofS[0]).length,
      1,
      1,
    ]);
    expect(orderViolations(received(slow, sub.secret), [...ofS, ...ofT])).toEqual([]);
    await unsubscribe(sub.id);
    await unsubscribe(fastSub.id);
    await slow.close();
    await fast.close();
  }, 120_000);

  it('resumes after the worker process is killed mid-delivery: every event arrives, at least once, in order', async () => {
    // The 11th request stays unanswered until the test has killed the worker: a delivery is
    // provably in flight at the kill.
    const inFlight = gate();
    const receiver = await startReceiver((n) => (n === 10 ? { status: 200, after: inFlight.wait() } : { status: 200 }));
    const sub = await subscribe(receiver.url);
    const skus = [uniqueSku('K'), uniqueSku('L')];
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await emit('stock.changed', [skus[i % 2]!]));
    await inFlight.entered;
    const interrupted = receiver.requests[10]!.event.id;
    worker.child.kill('SIGKILL');
    await worker.exited;
    inFlight.open(); // its answer reaches no one: the sender is gone
    for (let i = 0; i < 20; i++) ids.push(await emit('stock.changed', [skus[i % 2]!]));
    worker = spawnWorker();
    expect(
      await waitFor(
        () => statuses(sub.id),
        (s) => s.delivered === ids.length,
        100,
      ),
    ).toEqual({ delivered: ids.length });
    expect(deliveredIds(receiver)).toEqual(new Set(ids));
    // The delivery the kill interrupted was sent again by the new worker.
    expect(receiver.requests.filter((x) => x.event.id === interrupted).length).toBeGreaterThanOrEqual(2);
    expect(orderViolations(received(receiver, sub.secret), ids)).toEqual([]);
    expect(received(receiver, sub.secret).every((r) => r.valid)).toBe(true);
    // Still one dispatcher workflow, running.
    const description = await env!.client.workflow.getHandle(WEBHOOK_DISPATCHER_WORKFLOW_ID).describe();
    expect(description.status.name).toBe('RUNNING');
    await unsubscribe(sub.id);
    await receiver.close();
  }, 180_000);
});
