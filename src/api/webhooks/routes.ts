/**
 * Webhook subscriptions and their deliveries (admin), with the schemas they validate with and
 * answer in; the rows are src/webhooks/store.ts's, the sending src/webhooks/activities.ts's.
 */
import { randomBytes } from 'node:crypto';
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { parse } from '../../domain/schemas';
import { DELIVERY_STATUSES, type WebhookStore } from '../../webhooks/store';
import { bodyOf } from '../http';

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
  nextAttemptAt: z
    .string()
    .nullable()
    .meta({ description: 'when the next attempt is due; null once delivered or failed' }),
});
export const deliveryListSchema = z.object({ deliveries: z.array(deliverySchema) });
export const deliveryStatusQuery = z.enum(DELIVERY_STATUSES);

export function webhookRoutes(webhooks: WebhookStore, admin: RequestHandler): Router {
  const router = Router();
  const idOf = (req: Request) => String(req.params.id);

  router.post('/v1/webhooks', admin, async (req, res) => {
    const body = bodyOf(req, createWebhookBody);
    // 32 random bytes as hex: 64 characters, well over the contract's 32.
    const secret = body.secret ?? `whsec_${randomBytes(32).toString('hex')}`;
    const events = body.events.includes('*') ? ['*'] : [...new Set(body.events)];
    res.status(201).json({ ...(await webhooks.subscribe(body.url, events, secret)), secret });
  });

  router.get('/v1/webhooks', admin, async (_req, res) => {
    res.json({ webhooks: await webhooks.subscriptions() });
  });

  router.delete('/v1/webhooks/:id', admin, async (req, res) => {
    await webhooks.unsubscribe(idOf(req));
    res.status(204).end();
  });

  router.get('/v1/webhooks/:id/deliveries', admin, async (req, res) => {
    const status = req.query.status === undefined ? undefined : parse(deliveryStatusQuery, req.query.status, 'status');
    res.json({ deliveries: await webhooks.deliveries(idOf(req), status) });
  });

  router.post('/v1/webhooks/:id/deliveries/:deliveryId/retry', admin, async (req, res) => {
    await webhooks.retry(idOf(req), String(req.params.deliveryId));
    res.status(202).end();
  });

  return router;
}
