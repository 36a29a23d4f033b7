/**
 * The webhook routes over HTTP to the real app with real PostgreSQL (Temporal points at nothing):
 * subscribing, listing, deleting, the deliveries the fan-out trigger makes for committed events,
 * and retrying one. Events are inserted into `events` here as the outbox would write them.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { createApp } from '../../src/api/app';
import { createMetrics } from '../../src/api/metrics/registry';
import { ReservationService } from '../../src/api/reservations/service';
import { uniqueSku } from '../helpers/env';
import { request } from '../helpers/stack';
import { testStock } from '../helpers/stock';
import { WebhookStore } from '../../src/webhooks/store';

const ADMIN = 'webhooks-admin-token';
const CLIENT = 'webhooks-client-token';

const clients = testStock();
const { stock, db } = clients;
const connection = Connection.lazy({ address: '127.0.0.1:1', interceptors: [] });
const app = createApp({
  config: { adminToken: ADMIN, apiToken: CLIENT, maxTtlSeconds: 86_400 },
  stock,
  webhooks: new WebhookStore(db),
  reservations: new ReservationService(new Client({ connection }), stock, {
    taskQueue: 'webhooks',
    defaultTtlSeconds: 600,
    maxTtlSeconds: 86_400,
  }),
  metrics: createMetrics({ webhookCounts: () => new WebhookStore(db).counts() }),
  logger: pino({ level: 'silent' }),
  checks: { redis: () => clients.redis.ping(), postgres: () => db.query('SELECT 1'), temporal: async () => undefined },
});
const server = createServer(app);
let url = '';
const created: string[] = [];

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
  // Leave no active subscription behind: another suite's events would fan out to it.
  for (const id of created) await admin('DELETE', `/v1/webhooks/${id}`);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await connection.close();
  await clients.close();
});

const admin = (method: string, path: string, body?: unknown) => request(url, method, path, { token: ADMIN, body });

async function subscribe(events: string[] = ['*'], secret?: string) {
  const answer = await admin('POST', '/v1/webhooks', {
    url: 'http://127.0.0.1:9/hook',
    events,
    ...(secret ? { secret } : {}),
  });
  expect(answer.status).toBe(201);
  created.push(answer.body.id);
  return answer.body as { id: string; url: string; events: string[]; secret: string; createdAt: string };
}

/** An event as the outbox commits it. */
async function insertEvent(type: string, skus: string[]): Promise<string> {
  const id = randomUUID();
  await db.query('INSERT INTO events (id, type, skus, data) VALUES ($1, $2, $3, $4)', [
    id,
    type,
    skus,
    { sku: skus[0] },
  ]);
  return id;
}

describe('webhook subscriptions', () => {
  it('creates a subscription with a generated secret of at least 32 characters, shown only on creation', async () => {
    const hook = await subscribe(['stock.changed', 'stock.low']);
    expect(hook).toEqual({
      id: expect.any(String),
      url: 'http://127.0.0.1:9/hook',
      events: ['stock.changed', 'stock.low'],
      secret: expect.any(String),
      createdAt: expect.any(String),
    });
    expect(hook.secret.length).toBeGreaterThanOrEqual(32);
    const list = await admin('GET', '/v1/webhooks');
    expect(list.status).toBe(200);
    const listed = (list.body.webhooks as Record<string, unknown>[]).find((w) => w.id === hook.id);
    expect(listed).toEqual({ id: hook.id, url: hook.url, events: hook.events, createdAt: hook.createdAt });
    expect(list.text).not.toContain(hook.secret);
  });

  it('keeps a given secret of 16 characters or more, and refuses a shorter one', async () => {
    expect((await subscribe(['*'], 'sixteen-chars-ok')).secret).toBe('sixteen-chars-ok');
    const short = await admin('POST', '/v1/webhooks', {
      url: 'https://example.com/h',
      events: ['*'],
      secret: 'too-short',
    });
    expect(short.status).toBe(400);
    expect(short.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'secret' } });
  });

  it.each([
    ['a non-http URL', { url: 'ftp://example.com/hook', events: ['*'] }, 'url'],
    ['a relative URL', { url: '/hook', events: ['*'] }, 'url'],
    ['javascript:', { url: 'javascript:alert(1)', events: ['*'] }, 'url'],
    ['no events', { url: 'https://example.com/hook', events: [] }, 'events'],
    ['an unknown event type', { url: 'https://example.com/hook', events: ['stock.stolen'] }, 'events'],
    ['an unknown field', { url: 'https://example.com/hook', events: ['*'], extra: 1 }, undefined],
  ])('refuses %s with 400', async (_what, body, field) => {
    const answer = await admin('POST', '/v1/webhooks', body);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('INVALID_REQUEST');
    if (field) expect(String(answer.body.error.details.field)).toMatch(new RegExp(`^${field}`));
  });

  it('is admin only', async () => {
    expect((await request(url, 'GET', '/v1/webhooks', { token: CLIENT })).status).toBe(403);
    expect(
      (await request(url, 'POST', '/v1/webhooks', { token: null, body: { url: 'https://x.example', events: ['*'] } }))
        .status,
    ).toBe(401);
  });

  it('answers 404 NOT_FOUND for unknown or malformed webhook and delivery ids', async () => {
    const hook = await subscribe();
    for (const [method, path] of [
      ['DELETE', `/v1/webhooks/${randomUUID()}`],
      ['DELETE', '/v1/webhooks/not-a-uuid'],
      ['GET', `/v1/webhooks/${randomUUID()}/deliveries`],
      ['POST', `/v1/webhooks/${randomUUID()}/deliveries/${randomUUID()}/retry`],
      ['POST', `/v1/webhooks/${hook.id}/deliveries/${randomUUID()}/retry`],
      ['POST', `/v1/webhooks/${hook.id}/deliveries/nope/retry`],
    ] as const) {
      const answer = await admin(method, path);
      expect([path, answer.status, answer.body.error?.code]).toEqual([path, 404, 'NOT_FOUND']);
    }
  });
});

describe('deliveries', () => {
  it('gets one pending delivery per committed event of a type it subscribed to', async () => {
    const sku = uniqueSku('WH');
    const hook = await subscribe(['stock.changed']);
    const all = await subscribe(['*']);
    const changed = await insertEvent('stock.changed', [sku]);
    const held = await insertEvent('reservation.held', [sku]);
    const list = await admin('GET', `/v1/webhooks/${hook.id}/deliveries`);
    expect(list.status).toBe(200);
    expect(list.body.deliveries).toEqual([
      {
        id: expect.any(String),
        eventId: changed,
        type: 'stock.changed',
        status: 'pending',
        attempts: 0,
        lastError: null,
        nextAttemptAt: expect.any(String),
      },
    ]);
    const everything = await admin('GET', `/v1/webhooks/${all.id}/deliveries?status=pending`);
    expect(everything.body.deliveries.map((d: { eventId: string }) => d.eventId)).toEqual([held, changed]);
    expect((await admin('GET', `/v1/webhooks/${all.id}/deliveries?status=delivered`)).body.deliveries).toEqual([]);
  });

  it('refuses an unknown status filter with 400', async () => {
    const hook = await subscribe();
    const answer = await admin('GET', `/v1/webhooks/${hook.id}/deliveries?status=lost`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'status' } });
  });

  it('does not fan an event out to a subscription created after it committed', async () => {
    await insertEvent('stock.changed', [uniqueSku('WH')]);
    const hook = await subscribe();
    expect((await admin('GET', `/v1/webhooks/${hook.id}/deliveries`)).body.deliveries).toEqual([]);
  });

  it('retries a failed delivery: 202, then pending and due now', async () => {
    const hook = await subscribe(['stock.sold_out']);
    await insertEvent('stock.sold_out', [uniqueSku('WH')]);
    const [delivery] = (await admin('GET', `/v1/webhooks/${hook.id}/deliveries`)).body.deliveries as { id: string }[];
    // Failed for good, its next attempt (were it pending) a day away: the retry must make it due now.
    await db.query(
      "UPDATE webhook_deliveries SET status = 'failed', attempts = 30, last_error = 'HTTP 500', next_attempt_at = now() + interval '1 day' WHERE id = $1",
      [delivery!.id],
    );
    const failed = await admin('GET', `/v1/webhooks/${hook.id}/deliveries?status=failed`);
    expect(failed.body.deliveries).toEqual([
      expect.objectContaining({
        id: delivery!.id,
        status: 'failed',
        attempts: 30,
        lastError: 'HTTP 500',
        nextAttemptAt: null,
      }),
    ]);
    const retry = await admin('POST', `/v1/webhooks/${hook.id}/deliveries/${delivery!.id}/retry`);
    expect(retry.status).toBe(202);
    const [after] = (await admin('GET', `/v1/webhooks/${hook.id}/deliveries`)).body.deliveries as {
      status: string;
      nextAttemptAt: string;
    }[];
    expect(after!.status).toBe('pending');
    // Due now by the database's own clock (the one the dispatcher compares with), as the API shows it.
    const { rows } = await db.query<{ due: boolean; at: Date }>(
      'SELECT next_attempt_at <= now() AS due, next_attempt_at AS at FROM webhook_deliveries WHERE id = $1',
      [delivery!.id],
    );
    expect({ due: rows[0]!.due, nextAttemptAt: after!.nextAttemptAt }).toEqual({
      due: true,
      nextAttemptAt: rows[0]!.at.toISOString(),
    });
  });

  it('deleting a subscription stops its pending deliveries and makes it unknown', async () => {
    const hook = await subscribe();
    await insertEvent('stock.changed', [uniqueSku('WH')]);
    const deleted = await admin('DELETE', `/v1/webhooks/${hook.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    const { rows } = await db.query('SELECT status, last_error FROM webhook_deliveries WHERE subscription_id = $1', [
      hook.id,
    ]);
    expect(rows).toEqual([{ status: 'failed', last_error: 'subscription deleted' }]);
    expect((await admin('GET', '/v1/webhooks')).body.webhooks.map((w: { id: string }) => w.id)).not.toContain(hook.id);
    expect((await admin('GET', `/v1/webhooks/${hook.id}/deliveries`)).status).toBe(404);
    expect((await admin('DELETE', `/v1/webhooks/${hook.id}`)).status).toBe(404);
    await insertEvent('stock.changed', [uniqueSku('WH')]);
    expect(
      (await db.query('SELECT count(*)::int AS n FROM webhook_deliveries WHERE subscription_id = $1', [hook.id]))
        .rows[0].n,
    ).toBe(1);
  });

  it('shows the pending deliveries on /metrics', async () => {
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/^stockhold_webhook_deliveries_pending \d+$/m);
  });
});
