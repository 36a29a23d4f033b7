/**
 * Webhook subscriptions and their deliveries (admin), with the schemas they validate with and
 * answer in. The rows are written by these routes and by the fan-out trigger on `events`
 * (migrations/1764900000000_webhooks.sql); the dispatcher (src/activities/webhooks.ts) sends them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Router, type Request, type RequestHandler } from 'express';
import type { Pool } from 'pg';
import { z } from 'zod';
import { StockholdError } from '../domain/errors';
import { parse } from '../domain/schemas';
import { bodyOf } from './http';

/** The event types a subscription can ask for (docs/API.md, "Events"); `*` is all of them. */
export const WEBHOOK_EVENT_TYPES = [
  'stock.changed',
  'stock.low',
  'stock.sold_out',
  'stock.back_in_stock',
  'reservation.held',
  'reservation.committed',
  'reservation.cancelled',
  'reservation.expired',
] as const;

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

/** At most this many deliveries are listed, newest first. */
export const MAX_DELIVERIES_LISTED = 500;

const urlSchema = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/\S+$/i, 'must be an http or https URL')
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an http or https URL')
  .meta({ description: 'an absolute http(s) URL', format: 'uri' });

export const createWebhookBody = z.strictObject({
  url: urlSchema,
  events: z
    .array(z.enum([...WEBHOOK_EVENT_TYPES, '*']))
    .min(1)
    .max(WEBHOOK_EVENT_TYPES.length + 1),
  secret: z.string().min(16).max(256).optional(),
});

export const webhookSchema = z.object({
  id: z.uuid(),
  url: z.string(),
  events: z.array(z.string()),
  createdAt: z.string(),
});
export const createdWebhookSchema = webhookSchema.extend({ secret: z.string().min(16) });
export const webhookListSchema = z.object({ webhooks: z.array(webhookSchema) });
export const deliverySchema = z.object({
  id: z.uuid(),
  eventId: z.uuid(),
  type: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.string().nullable().meta({ description: 'when the next attempt is due; null once delivered or failed' }),
});
export const deliveryListSchema = z.object({ deliveries: z.array(deliverySchema) });
export const deliveryStatusQuery = z.enum(DELIVERY_STATUSES);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function webhookNotFound(id: string): StockholdError {
  return new StockholdError('NOT_FOUND', `webhook ${id} does not exist`, { webhookId: id });
}

interface SubscriptionRow {
  id: string;
  url: string;
  events: string[];
  created_at: Date;
}

const view = (row: SubscriptionRow) => ({ id: row.id, url: row.url, events: row.events, createdAt: row.created_at.toISOString() });

/** The id of an active subscription, or NOT_FOUND (a malformed id is as unknown as a missing one). */
async function activeSubscription(db: Pool, id: string): Promise<string> {
  if (!UUID.test(id)) throw webhookNotFound(id);
  const { rowCount } = await db.query('SELECT 1 FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL', [id]);
  if (!rowCount) throw webhookNotFound(id);
  return id;
}

/** Delivery outcomes by result, and pending deliveries, for /metrics (src/api/metrics.ts). */
export async function webhookCounts(db: Pool): Promise<{ results: { result: string; count: number }[]; pending: number }> {
  const [results, pending] = await Promise.all([
    db.query<{ result: string; count: string }>('SELECT result, count FROM webhook_counts'),
    db.query<{ n: string }>("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'"),
  ]);
  return { results: results.rows.map((r) => ({ result: r.result, count: Number(r.count) })), pending: Number(pending.rows[0]?.n ?? 0) };
}

export function webhookRoutes(db: Pool, admin: RequestHandler): Router {
  const router = Router();
  const idOf = (req: Request) => String(req.params.id);

  router.post('/v1/webhooks', admin, async (req, res) => {
    const body = bodyOf(req, createWebhookBody);
    // 32 random bytes as hex: 64 characters, well over the contract's 32.
    const secret = body.secret ?? `whsec_${randomBytes(32).toString('hex')}`;
    const events = body.events.includes('*') ? ['*'] : [...new Set(body.events)];
    const { rows } = await db.query<SubscriptionRow>(
      'INSERT INTO webhook_subscriptions (id, url, events, secret) VALUES ($1, $2, $3, $4) RETURNING id, url, events, created_at',
      [randomUUID(), body.url, events, secret],
    );
    res.status(201).json({ ...view(rows[0]!), secret });
  });

  router.get('/v1/webhooks', admin, async (_req, res) => {
    const { rows } = await db.query<SubscriptionRow>('SELECT id, url, events, created_at FROM webhook_subscriptions WHERE deleted_at IS NULL ORDER BY created_at, id');
    res.json({ webhooks: rows.map(view) });
  });

  router.delete('/v1/webhooks/:id', admin, async (req, res) => {
    const id = await activeSubscription(db, idOf(req));
    // One statement: the subscription is gone and its pending deliveries stop (marked failed), together.
    await db.query(
      `WITH gone AS (UPDATE webhook_subscriptions SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING id)
       UPDATE webhook_deliveries SET status = 'failed', last_error = 'subscription deleted', claimed_until = NULL
        WHERE subscription_id IN (SELECT id FROM gone) AND status = 'pending'`,
      [id],
    );
    res.status(204).end();
  });

  router.get('/v1/webhooks/:id/deliveries', admin, async (req, res) => {
    const id = await activeSubscription(db, idOf(req));
    const status = req.query.status === undefined ? undefined : parse(deliveryStatusQuery, req.query.status, 'status');
    const { rows } = await db.query<{ id: string; event_id: string; event_type: string; status: (typeof DELIVERY_STATUSES)[number]; attempts: number; last_error: string | null; next_attempt_at: Date }>(
      `SELECT id, event_id, event_type, status, attempts, last_error, next_attempt_at
         FROM webhook_deliveries
        WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2)
        ORDER BY event_seq DESC
        LIMIT ${MAX_DELIVERIES_LISTED}`,
      [id, status ?? null],
    );
    res.json({
      deliveries: rows.map((r) => ({
        id: r.id,
        eventId: r.event_id,
        type: r.event_type,
        status: r.status,
        attempts: r.attempts,
        lastError: r.last_error,
        nextAttemptAt: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
      })),
    });
  });

  router.post('/v1/webhooks/:id/deliveries/:deliveryId/retry', admin, async (req, res) => {
    const id = await activeSubscription(db, idOf(req));
    const deliveryId = String(req.params.deliveryId);
    const notFound = () => new StockholdError('NOT_FOUND', `delivery ${deliveryId} of webhook ${id} does not exist`, { webhookId: id, deliveryId });
    if (!UUID.test(deliveryId)) throw notFound();
    // Pending again, due now, with a new 24-hour window. It keeps its place in event order: later
    // pending deliveries of its SKUs wait for it (docs/DESIGN.md "Webhooks").
    const { rowCount } = await db.query(
      `UPDATE webhook_deliveries
          SET status = 'pending', next_attempt_at = now(), first_attempt_at = NULL, delivered_at = NULL
        WHERE id = $1 AND subscription_id = $2`,
      [deliveryId, id],
    );
    if (!rowCount) throw notFound();
    res.status(202).end();
  });

  return router;
}
