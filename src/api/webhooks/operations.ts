/** The webhook routes (./routes.ts), described for the OpenAPI document (src/api/openapi/). */
import { z } from 'zod';
import type { ApiOperation } from '../openapi/document';
import { MAX_DELIVERIES_LISTED } from '../../webhooks/store';
import {
  createdWebhookSchema,
  createWebhookBody,
  deliveryListSchema,
  deliveryStatusQuery,
  webhookListSchema,
} from './routes';

const webhookId = {
  id: { schema: z.string(), description: 'the webhook id (a UUID); any other value is 404 NOT_FOUND' },
};

/** The routes of ./routes.ts. */
export function webhookOperations(): ApiOperation[] {
  return [
    {
      method: 'post',
      path: '/v1/webhooks',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'Subscribe a URL to events',
      description:
        'Every event of the listed types (or `["*"]`: all) committed from now on is POSTed to `url`, signed with `secret` (`Stockhold-Signature`). The secret is generated when left out, and shown only in this answer.',
      body: { schema: createWebhookBody, required: true },
      responses: { 201: { description: 'the subscription with its secret', json: createdWebhookSchema } },
      errors: ['UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/webhooks',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'The subscriptions (without their secrets)',
      responses: { 200: { description: 'the subscriptions, oldest first', json: webhookListSchema } },
      errors: ['UNAVAILABLE'],
    },
    {
      method: 'delete',
      path: '/v1/webhooks/:id',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'Unsubscribe',
      description: 'Its pending deliveries stop (they become `failed`, last error "subscription deleted").',
      pathParams: webhookId,
      responses: { 204: { description: 'deleted' } },
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/webhooks/:id/deliveries',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'Deliveries of a subscription, newest event first',
      description: `At most ${MAX_DELIVERIES_LISTED}.`,
      pathParams: webhookId,
      query: { status: { schema: deliveryStatusQuery, description: 'only deliveries in this status' } },
      responses: { 200: { description: 'the deliveries', json: deliveryListSchema } },
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/webhooks/:id/deliveries/:deliveryId/retry',
      access: 'admin',
      tag: 'Webhooks',
      summary: 'Send a delivery again',
      description: 'It becomes `pending`, due now, with a new 24-hour retry window, in its place in event order.',
      pathParams: { ...webhookId, deliveryId: { schema: z.string(), description: 'the delivery id (a UUID)' } },
      responses: { 202: { description: 'queued' } },
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
    },
  ];
}
