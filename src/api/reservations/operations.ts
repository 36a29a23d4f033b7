/** The reservation routes (./routes.ts), described for the OpenAPI document (src/api/openapi/). */
import { reservationIdSchema } from '../../domain/schemas';
import { reservationViewSchema } from '../../domain/views';
import type { ApiOperation } from '../openapi/document';
import type { reservationBodies } from './routes';

const reservationId = { id: { schema: reservationIdSchema, description: 'the reservation id' } };

/** The routes of ./routes.ts. */
export function reservationOperations(bodies: ReturnType<typeof reservationBodies>): ApiOperation[] {
  return [
    {
      method: 'post',
      path: '/v1/reservations',
      access: 'client',
      tag: 'Reservations',
      summary: 'Hold a cart',
      description:
        'All lines or none. The server makes a UUID when `reservationId` is left out; the reservation id is the idempotency key. Contract v3: `channel` (default `default`) names the locations the cart is allocated over, in the atomic hold step; a line with `locationId` is held there only.',
      body: { schema: bodies.create, required: true },
      responses: {
        201: {
          description: 'held: the view, status HELD, after the hold is applied in Redis',
          json: reservationViewSchema,
        },
        200: {
          description: 'a repeat (same id and body): the current view; nothing more is held',
          json: reservationViewSchema,
        },
      },
      errors: [
        'SKU_NOT_FOUND',
        'CHANNEL_NOT_FOUND',
        'LOCATION_NOT_IN_CHANNEL',
        'CUSTOMER_LIMIT_EXCEEDED',
        'INSUFFICIENT_STOCK',
        'RESERVATION_ID_CONFLICT',
        'UNAVAILABLE',
      ],
    },
    {
      method: 'get',
      path: '/v1/reservations/:id',
      access: 'client',
      tag: 'Reservations',
      summary: 'A reservation',
      pathParams: reservationId,
      responses: { 200: { description: 'the view', json: reservationViewSchema } },
      errors: ['RESERVATION_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/reservations/:id/commit',
      access: 'client',
      tag: 'Reservations',
      summary: 'Commit (sell) what is held',
      description:
        'Without `items` everything held is sold; with `items` at most the held quantity per named line, and the rest is released. The body may be left out. A repeat answers the same COMMITTED view.',
      pathParams: reservationId,
      body: { schema: bodies.commit, required: false },
      responses: {
        200: {
          description: 'the view, status COMMITTED, after the sale is durable in PostgreSQL',
          json: reservationViewSchema,
        },
      },
      errors: [
        'RESERVATION_NOT_FOUND',
        'RESERVATION_EXPIRED',
        'RESERVATION_CANCELLED',
        'RESERVATION_REJECTED',
        'QUANTITY_EXCEEDS_HOLD',
        'UNAVAILABLE',
      ],
    },
    {
      method: 'post',
      path: '/v1/reservations/:id/cancel',
      access: 'client',
      tag: 'Reservations',
      summary: 'Cancel and give the hold back',
      description: 'The body may be left out.',
      pathParams: reservationId,
      body: { schema: bodies.cancel, required: false },
      responses: {
        200: {
          description: 'the view, status CANCELLED (EXPIRED or REJECTED when it already was)',
          json: reservationViewSchema,
        },
      },
      errors: ['RESERVATION_NOT_FOUND', 'RESERVATION_COMMITTED', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/reservations/:id/extend',
      access: 'client',
      tag: 'Reservations',
      summary: 'Move the deadline to now + ttlSeconds',
      description: 'This may also shorten the deadline.',
      pathParams: reservationId,
      body: { schema: bodies.extend, required: true },
      responses: { 200: { description: 'the view with the new expiresAt', json: reservationViewSchema } },
      errors: [
        'RESERVATION_NOT_FOUND',
        'RESERVATION_EXPIRED',
        'RESERVATION_CANCELLED',
        'RESERVATION_REJECTED',
        'RESERVATION_COMMITTED',
        'UNAVAILABLE',
      ],
    },
  ];
}
