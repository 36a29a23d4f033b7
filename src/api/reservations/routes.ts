/**
 * Reservation routes (client) with the body schemas they validate: handlers parse, call one
 * ReservationService method, answer.
 */
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import {
  cartLinesSchema,
  channelNameSchema,
  customerIdSchema,
  linesSchema,
  parse,
  paymentIdSchema,
  reasonSchema,
  reservationIdSchema,
  ttlSecondsSchema,
} from '../../domain/schemas';
import { toContractError } from '../errors';
import { bodyOf } from '../http';
import type { Metrics } from '../metrics/registry';
import type { ReservationService } from './service';

/** Bodies of the reservation calls; `maxTtlSeconds` is the service's RESERVATION_MAX_TTL_SECONDS. */
export function reservationBodies(maxTtlSeconds: number) {
  const ttlSeconds = ttlSecondsSchema(maxTtlSeconds);
  return {
    create: z.strictObject({
      reservationId: reservationIdSchema.optional(),
      items: cartLinesSchema,
      ttlSeconds: ttlSeconds.optional(),
      customerId: customerIdSchema.optional(),
      channel: channelNameSchema.optional(),
    }),
    commit: z.strictObject({ paymentId: paymentIdSchema.optional(), items: linesSchema.optional() }),
    cancel: z.strictObject({ reason: reasonSchema.optional() }),
    extend: z.strictObject({ ttlSeconds }),
  };
}

const idOf = (req: Request) => parse(reservationIdSchema, req.params.id, 'reservationId');

export function reservationRoutes(
  service: ReservationService,
  maxTtlSeconds: number,
  client: RequestHandler,
  metrics: Metrics,
): Router {
  const bodies = reservationBodies(maxTtlSeconds);
  const router = Router();

  router.post('/v1/reservations', client, async (req, res) => {
    try {
      const { created, reservation } = await service.create(bodyOf(req, bodies.create));
      // A repeat of the same request is not a new hold.
      metrics.reservationAnswered({ created });
      res.status(created ? 201 : 200).json(reservation);
    } catch (err) {
      metrics.reservationAnswered({ code: toContractError(err)?.code ?? 'ERROR' });
      throw err;
    }
  });
  router.get('/v1/reservations/:id', client, async (req, res) => {
    res.json(await service.get(idOf(req)));
  });
  router.post('/v1/reservations/:id/commit', client, async (req, res) => {
    const id = idOf(req);
    res.json(await service.commit(id, bodyOf(req, bodies.commit, {})));
  });
  router.post('/v1/reservations/:id/cancel', client, async (req, res) => {
    const id = idOf(req);
    res.json(await service.cancel(id, bodyOf(req, bodies.cancel, {})));
  });
  router.post('/v1/reservations/:id/extend', client, async (req, res) => {
    const id = idOf(req);
    res.json(await service.extend(id, bodyOf(req, bodies.extend)));
  });
  return router;
}
