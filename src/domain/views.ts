/**
 * The contract's answers as zod schemas: the stock view, the reservation view, the error envelope
 * and the rest (docs/API.md). The OpenAPI document (src/api/openapi/) is generated from them, and
 * the types below are checked against the interfaces of types.ts, so the document, the code and the
 * answers cannot drift apart unnoticed. Not for workflow code (zod).
 */
import { z } from 'zod';
import { ERROR_STATUS, type ErrorCode } from './errors';
import {
  MAX_AVAILABILITY_SKUS,
  MAX_BUNDLE_COMPONENTS,
  MAX_CHANNEL_LOCATIONS,
  MAX_LINE_QUANTITY,
  MAX_LINES,
  MAX_MOVEMENTS,
  MAX_PER_CUSTOMER,
  MAX_STOCK,
} from './limits';
import { reservationIdSchema, skuSchema } from './schemas';
import {
  ALLOCATION_STRATEGIES,
  MOVEMENT_KINDS,
  RESERVATION_STATUSES,
  type Bundle,
  type BundleView,
  type Channel,
  type Location,
  type Movement,
  type ReservationView,
  type ReturnResult,
  type StockHold,
  type StockView,
} from './types';

/** A time as the service writes it: ISO 8601 in UTC with milliseconds (`Date.prototype.toISOString`). */
const timestamp = z.iso
  .datetime()
  .meta({ description: 'ISO 8601 time in UTC', examples: ['2026-11-24T10:15:00.000Z'] });
const count = (max: number) => z.number().int().min(0).max(max);

export const stockViewSchema = z
  .strictObject({
    sku: skuSchema,
    name: z.string().meta({ description: 'empty when the SKU was created without one' }),
    total: count(MAX_STOCK).meta({ description: 'units not yet sold' }),
    reserved: count(MAX_STOCK).meta({ description: 'units held by live reservations' }),
    available: z.number().int().min(-MAX_STOCK).max(MAX_STOCK).meta({ description: 'total - reserved' }),
    lowStockThreshold: count(MAX_STOCK)
      .nullable()
      .meta({ description: "the SKU's low-stock threshold (PATCH); null when unset" }),
    maxPerCustomer: z
      .number()
      .int()
      .min(1)
      .max(MAX_PER_CUSTOMER)
      .nullable()
      .meta({ description: 'units one customer may hold plus have bought (PATCH); null when unset' }),
    locations: z
      .array(
        z.strictObject({
          locationId: skuSchema,
          total: count(MAX_STOCK),
          reserved: count(MAX_STOCK),
          available: count(MAX_STOCK).meta({ description: 'max(0, total - reserved) at this location' }),
        }),
      )
      .optional()
      .meta({
        description:
          "the SKU's levels by locationId, with the view's figures theirs summed: read through a channel (`?channel=`), those at the channel's locations; without one, every level of a SKU stocked elsewhere than `default` (absent on a SKU only ever at `default`, and in a write's answer)",
      }),
  })
  .meta({ description: "A SKU's stock figures and settings, read from Redis." });

const componentQuantity = z
  .number()
  .int()
  .min(1)
  .max(MAX_LINE_QUANTITY)
  .meta({ description: 'units of the component in one bundle' });

export const bundleSchema = z.strictObject({
  sku: skuSchema.meta({ description: "the bundle's id (a SKU id no stocked SKU has)" }),
  name: z.string().meta({ description: 'empty when the bundle was put without one' }),
  components: z
    .array(z.strictObject({ sku: skuSchema, quantity: componentQuantity }))
    .min(1)
    .max(MAX_BUNDLE_COMPONENTS)
    .meta({ description: 'stocked SKUs, in the order given' }),
});

export const bundleViewSchema = z
  .strictObject({
    sku: skuSchema,
    name: z.string(),
    bundle: z.literal(true),
    available: count(MAX_STOCK).meta({
      description:
        'the least, over the components, of floor(available / quantity): whole bundles a buyer could hold now',
    }),
    components: z
      .array(
        z.strictObject({
          sku: skuSchema,
          quantity: componentQuantity,
          available: z
            .number()
            .int()
            .min(-MAX_STOCK)
            .max(MAX_STOCK)
            .meta({ description: "the component's own available" }),
        }),
      )
      .min(1)
      .max(MAX_BUNDLE_COMPONENTS),
  })
  .meta({ description: "A bundle's stock, from its components' (read from Redis, through `?channel=` when given)." });

/** What `GET /v1/skus/:sku` answers: a stocked SKU's view or a bundle's (tell them apart by `bundle`). */
export const skuReadSchema = z.union([stockViewSchema, bundleViewSchema]);

export const availabilitySchema = z.strictObject({
  items: z
    .array(skuReadSchema)
    .max(MAX_AVAILABILITY_SKUS)
    .meta({ description: 'the SKUs that exist, each once, in the order asked (a bundle as a bundle view)' }),
  missing: z.array(skuSchema).max(MAX_AVAILABILITY_SKUS).meta({ description: 'the SKUs asked for that do not exist' }),
});

export const movementSchema = z
  .strictObject({
    id: z.string().regex(/^\d+$/).meta({ description: 'digits; increasing with time per SKU' }),
    kind: z.enum(MOVEMENT_KINDS),
    delta: z.number().int().min(-MAX_STOCK).max(MAX_STOCK),
    reservationId: reservationIdSchema.optional().meta({ description: 'for `sale` and `return`' }),
    reason: z.string().optional().meta({ description: 'when one was given (`initial` has "created")' }),
    at: timestamp,
    locationId: skuSchema
      .optional()
      .meta({ description: 'where the units moved (contract v3); absent for `default`, as in v2' }),
    transferId: z
      .string()
      .optional()
      .meta({ description: 'the transfer a `transfer_out`/`transfer_in` pair belongs to' }),
  })
  .meta({ description: "One row of a SKU's append-only ledger." });

export const movementsPageSchema = z.strictObject({
  movements: z.array(movementSchema).max(MAX_MOVEMENTS).meta({ description: 'newest first' }),
});

export const stockHoldSchema = z.strictObject({
  reservationId: reservationIdSchema,
  quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY),
  expiresAt: timestamp.nullable().meta({ description: 'null while the reservation row is not written yet' }),
  allocations: z
    .array(z.strictObject({ locationId: skuSchema, quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY) }))
    .optional()
    .meta({ description: 'where the units are held (contract v3), first taken first; only on a SKU with levels' }),
});

export const holdsSchema = z.strictObject({
  sku: skuSchema,
  holds: z.array(stockHoldSchema).meta({ description: 'earliest deadline first; those without one first' }),
});

export const reservationLineSchema = z.strictObject({
  sku: skuSchema,
  quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY).meta({ description: 'what the line held' }),
  committedQuantity: count(MAX_LINE_QUANTITY).meta({ description: 'what was sold (0 until the commit)' }),
  returnedQuantity: count(MAX_LINE_QUANTITY).meta({
    description: 'what came back through POST /v1/returns after the sale',
  }),
  allocations: z
    .array(
      z.strictObject({
        locationId: skuSchema,
        quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY),
        committedQuantity: count(MAX_LINE_QUANTITY),
      }),
    )
    .optional()
    .meta({
      description:
        'where the line is held (contract v3), first taken first; a commit sells from the first ones first. Absent for a line held all at `default`',
    }),
});

export const reservationViewSchema = z
  .strictObject({
    reservationId: reservationIdSchema,
    status: z.enum(RESERVATION_STATUSES),
    items: z.array(reservationLineSchema).min(1).max(MAX_LINES),
    customerId: z.string().nullable().meta({ description: 'null when the reservation was made without one' }),
    expiresAt: timestamp,
    createdAt: timestamp,
    updatedAt: timestamp,
    workflowId: z
      .string()
      .regex(/^reservation-[A-Za-z0-9_-]{1,64}$/)
      .meta({ description: 'the Temporal workflow id: reservation-<reservationId>' }),
  })
  .meta({ description: 'A reservation: PENDING -> HELD | REJECTED; HELD -> COMMITTED | CANCELLED | EXPIRED.' });

export const returnResultSchema = z.strictObject({
  reservationId: reservationIdSchema,
  items: z
    .array(
      z.strictObject({
        sku: skuSchema,
        returnedQuantity: z.number().int().min(1).max(MAX_LINE_QUANTITY).meta({ description: 'returned by this call' }),
      }),
    )
    .min(1)
    .max(MAX_LINES),
});

export const healthSchema = z.strictObject({ status: z.literal('ok') });

const checkState = z.enum(['ok', 'down', 'loading', 'no-worker']).meta({
  description:
    '"down": it does not answer; "loading" (redis): its counters are being rebuilt from PostgreSQL after a loss; "no-worker" (temporal): no worker polls the task queue',
});
export const readinessSchema = z.strictObject({
  status: checkState.meta({ description: '"ok" when every check is' }),
  checks: z.strictObject({ redis: checkState, postgres: checkState, temporal: checkState }),
});

/** Every code an answer's `error.code` can carry: the domain's, and INTERNAL for a fault of the service itself. */
export const ANSWER_CODES = [...(Object.keys(ERROR_STATUS) as ErrorCode[]), 'INTERNAL'] as const;
export type AnswerCode = (typeof ANSWER_CODES)[number];

/** HTTP status of every code an answer can carry. */
export const statusOfCode = (code: AnswerCode): number => (code === 'INTERNAL' ? 500 : ERROR_STATUS[code]);

export const locationSchema = z.strictObject({
  locationId: skuSchema.meta({ description: 'the location id (the SKU pattern)' }),
  name: z.string(),
  createdAt: timestamp,
});
export const locationListSchema = z.strictObject({
  locations: z.array(locationSchema).meta({ description: 'in creation order, `default` first' }),
});
export const channelSchema = z.strictObject({
  channel: skuSchema.meta({ description: 'the channel name (the SKU pattern)' }),
  locations: z
    .array(skuSchema)
    .min(1)
    .max(MAX_CHANNEL_LOCATIONS)
    .meta({ description: "the channel's locations, in its order" }),
  strategy: z.enum(ALLOCATION_STRATEGIES).meta({
    description:
      '`priority`: a line goes to the first location in list order that has all of it; `most-available`: most available first, ties in list order',
  }),
});
export const channelListSchema = z.strictObject({
  channels: z
    .array(channelSchema)
    .meta({ description: '`default` first, then the others in the order they were first put' }),
});

/** The error envelope `{"error": {"code", "message", "details"}}`, with `code` one of `codes`. */
export function errorEnvelopeSchema(
  codes: readonly [AnswerCode, ...AnswerCode[]] = ANSWER_CODES as unknown as [AnswerCode, ...AnswerCode[]],
) {
  return z.strictObject({
    error: z.strictObject({
      code: z.enum(codes).meta({ description: 'stable, for programs' }),
      message: z.string().min(1).meta({ description: 'a sentence for people; may change' }),
      details: z
        .record(z.string(), z.unknown())
        .meta({ description: 'an object, empty when there is nothing to add; for 400 `field` and `issues`' }),
    }),
  });
}

// Every field a schema promises is in the interface the code answers with (types.ts), with the
// same type. The other way round (a field the code writes that a schema lacks) is caught at run
// time: the schemas are strict objects, and the test suites check every answer against the
// document (test/helpers/conformance.ts).
type Covers<Code, Schema> = [Code] extends [Schema] ? true : false;
const covers = <Code, Schema>(proof: Covers<Code, Schema>) => proof;
covers<StockView, z.output<typeof stockViewSchema>>(true);
covers<Movement, z.output<typeof movementSchema>>(true);
covers<StockHold, z.output<typeof stockHoldSchema>>(true);
covers<ReservationView, z.output<typeof reservationViewSchema>>(true);
covers<ReturnResult, z.output<typeof returnResultSchema>>(true);
covers<Location, z.output<typeof locationSchema>>(true);
covers<Channel, z.output<typeof channelSchema>>(true);
covers<Bundle, z.output<typeof bundleSchema>>(true);
covers<BundleView, z.output<typeof bundleViewSchema>>(true);
