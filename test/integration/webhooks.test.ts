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
import { verifySignature } from '../../src/activities/webhook-signature';
import { ensureWebhookDispatcher } from '../../src/temporal';
import { WEBHOOK_DISPATCHER_WORKFLOW_ID } from '../../src/workflows/webhook-dispatcher';
import { TEST_REDIS_URL, uniqueSku } from '../helpers/env';
import { buildIfStale, killWorkers, spawnWorker as spawnWorkerProcess, WORKER_JS, type WorkerProcess } from '../helpers/processes';
import { pollUntil } from '../helpers/stack';
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
  at: number;
  valid: boolean;
  status: number;
}

/** Event id → its seq and SKUs, as inserted. */
const inserted = new Map<string, { seq: number; skus: string[]; at: number }>();

/** What `receiver` got so far, each request checked against `secret` and against the events inserted. */
function received(receiver: Receiver, secret: string): Received[] {
  return receiver.requests.map((r) => {
    const known = inserted.get(r.event.id);
    const valid =
      verifySignature(secret, r.raw, r.headers['stockhold-signature'] as string | undefined) &&
      r.headers['stockhold-event-id'] === r.event.id &&
      typeof r.event.createdAt === 'string' &&
      known !== undefined;
    return { eventId: r.event.id, seq: known?.seq ?? -1, skus: known?.skus ?? [], at: r.at, valid, status: r.status };
  });
}

async function subscribe(url: string, events: string[] = ['*']): Promise<{ id: string; secret: string }> {
  const id = randomUUID();
  const secret = `whsec_${randomUUID()}`;
  await db.query('INSERT INTO webhook_subscriptions (id, url, events, secret) VALUES ($1, $2, $3, $4)', [id, url, events, secret]);
  return { id, secret };
}

/** As DELETE /v1/webhooks/:id does: a finished test's subscription must not receive the next test's events. */
async function unsubscribe(id: string): Promise<void> {
  await db.query('UPDATE webhook_subscriptions SET deleted_at = now() WHERE id = $1', [id]);
  await db.query("UPDATE webhook_deliveries SET status = 'failed', last_error = 'subscription deleted' WHERE subscription_id = $1 AND status = 'pending'", [id]);
}

/** Commits one event, as the outbox does. */
async function emit(type: string, skus: string[]): Promise<string> {
  const id = randomUUID();
  const { rows } = await db.query<{ seq: string }>('INSERT INTO events (id, type, skus, data) VALUES ($1, $2, $3, $4) RETURNING seq', [id, type, skus, { skus }]);
  inserted.set(id, { seq: Number(rows[0]!.seq), skus, at: Date.now() });
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
      if (e.seq < r.seq && e.skus.some((s) => r.skus.includes(s)) && !seen.has(id)) problems.push(`${r.eventId} (seq ${r.seq}) before ${id} (seq ${e.seq})`);
    }
    seen.add(r.eventId);
  }
  return problems;
}

async function statuses(subscription: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM webhook_deliveries WHERE subscription_id = $1 GROUP BY status', [subscription]);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

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
  await pollUntil(async () => warm.requests.length, (n) => n > 0, 60_000, 50);
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
  it('delivers signed events in order per SKU, with the Stockhold-Event-Id header, and measures the latency', async () => {
    const receiver = await startReceiver();
    const sub = await subscribe(receiver.url);
    const skus = [uniqueSku('A'), uniqueSku('B'), uniqueSku('C')];
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      // Mostly one SKU each, sometimes a two-SKU cart (a reservation event belongs to each SKU).
      const cart = i % 10 === 9 ? [skus[i % 3]!, skus[(i + 1) % 3]!] : [skus[i % 3]!];
      ids.push(await emit(i % 10 === 9 ? 'reservation.held' : 'stock.changed', cart));
      if (i % 5 === 4) await sleep(20);
    }
    await pollUntil(async () => deliveredIds(receiver).size, (n) => n === ids.length, 30_000, 100);
    expect(deliveredIds(receiver).size).toBe(ids.length);
    expect(received(receiver, sub.secret).every((r) => r.valid)).toBe(true);
    expect(orderViolations(received(receiver, sub.secret), ids)).toEqual([]);
    await pollUntil(() => statuses(sub.id), (s) => s.delivered === ids.length, 5_000, 100);
    expect(await statuses(sub.id)).toEqual({ delivered: ids.length });

    const firstReceipt = new Map<string, number>();
    for (const r of receiver.requests) if (!firstReceipt.has(r.event.id)) firstReceipt.set(r.event.id, r.at);
    const latencies = ids.map((id) => firstReceipt.get(id)! - inserted.get(id)!.at).sort((a, b) => a - b);
    console.log(`webhook delivery latency, commit to receipt, ${latencies.length} events: p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies.at(-1)} ms`);
    await unsubscribe(sub.id);
    await receiver.close();
  }, 60_000);

  it('retries a receiver that answers 500 for a while, keeping the order, and sends other SKUs and subscriptions meanwhile', async () => {
    const failing = await startReceiver((n) => ({ status: n < 6 ? 500 : 200 }));
    const sub = await subscribe(failing.url);
    const healthy = await startReceiver();
    const healthySub = await subscribe(healthy.url);
    const sku = uniqueSku('R');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await emit('stock.changed', [sku]));
    // The healthy subscription gets everything while the other is still failing.
    await pollUntil(async () => deliveredIds(healthy).size, (n) => n === ids.length, 10_000, 50);
    expect(deliveredIds(healthy).size).toBe(ids.length);
    await pollUntil(async () => deliveredIds(failing).size, (n) => n === ids.length, 30_000, 100);
    expect(deliveredIds(failing).size).toBe(ids.length);
    expect(orderViolations(received(failing, sub.secret).filter((r) => r.status === 200), ids)).toEqual([]);
    // While the first event failed, nothing after it was sent: the six failures are all of it.
    expect(failing.requests.slice(0, 6).map((r) => r.event.id)).toEqual(Array(6).fill(ids[0]));
    const { rows } = await db.query<{ attempts: number; last_error: string | null }>('SELECT attempts, last_error FROM webhook_deliveries WHERE subscription_id = $1 AND event_id = $2', [sub.id, ids[0]]);
    expect(rows[0]).toEqual({ attempts: 7, last_error: null });
    await unsubscribe(sub.id);
    await unsubscribe(healthySub.id);
    await failing.close();
    await healthy.close();
  }, 60_000);

  it('counts a receiver slower than the timeout as a failure and retries; a slow one does not hold up another subscription', async () => {
    const slow = await startReceiver((n) => ({ status: 200, delayMs: n === 0 ? TIMEOUT_MS * 3 : 300 }));
    const sub = await subscribe(slow.url);
    const fast = await startReceiver();
    const fastSub = await subscribe(fast.url);
    const sku = uniqueSku('S');
    const ids = [await emit('stock.low', [sku]), await emit('stock.sold_out', [sku]), await emit('stock.back_in_stock', [sku])];
    await pollUntil(async () => deliveredIds(fast).size, (n) => n === 3, 5_000, 50);
    // The fast receiver has all three before the slow one's first attempt has even timed out.
    expect(deliveredIds(fast).size).toBe(3);
    await pollUntil(() => statuses(sub.id), (s) => s.delivered === 3, 20_000, 100);
    const { rows } = await db.query<{ event_id: string; attempts: number }>('SELECT event_id, attempts FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY event_seq', [sub.id]);
    expect(rows).toEqual([
      { event_id: ids[0], attempts: 2 },
      { event_id: ids[1], attempts: 1 },
      { event_id: ids[2], attempts: 1 },
    ]);
    expect(orderViolations(received(slow, sub.secret), ids)).toEqual([]);
    await unsubscribe(sub.id);
    await unsubscribe(fastSub.id);
    await slow.close();
    await fast.close();
  }, 60_000);

  it('resumes after the worker process is killed mid-delivery: every event arrives, at least once, in order', async () => {
    // Each answer takes 100 ms, so there is always a delivery in flight to kill.
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 100 }));
    const sub = await subscribe(receiver.url);
    const skus = [uniqueSku('K'), uniqueSku('L')];
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await emit('stock.changed', [skus[i % 2]!]));
    await pollUntil(async () => deliveredIds(receiver).size, (n) => n >= 10, 20_000, 20);
    worker.child.kill('SIGKILL');
    await worker.exited;
    const atKill = receiver.requests.length;
    for (let i = 0; i < 20; i++) ids.push(await emit('stock.changed', [skus[i % 2]!]));
    await sleep(500);
    expect(receiver.requests.length - atKill).toBeLessThanOrEqual(2); // nothing sends while no worker runs (but answers in flight)
    worker = spawnWorker();
    await pollUntil(async () => deliveredIds(receiver).size, (n) => n === ids.length, 60_000, 100);
    expect(deliveredIds(receiver).size).toBe(ids.length);
    expect(orderViolations(received(receiver, sub.secret), ids)).toEqual([]);
    expect(received(receiver, sub.secret).every((r) => r.valid)).toBe(true);
    await pollUntil(() => statuses(sub.id), (s) => s.delivered === ids.length, 10_000, 100);
    // Still one dispatcher workflow, running.
    const description = await env!.client.workflow.getHandle(WEBHOOK_DISPATCHER_WORKFLOW_ID).describe();
    expect(description.status.name).toBe('RUNNING');
    await unsubscribe(sub.id);
    await receiver.close();
  }, 120_000);
});
