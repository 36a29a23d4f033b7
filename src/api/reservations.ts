import { createHash, randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { z } from 'zod';
import type { Config } from '../config';
import { keys, StockholdError, unavailable } from '../stock';
import { customerIdSchema, linesSchema, parse, reasonSchema, reservationIdSchema } from '../stock/schemas';
import type { StockRedis } from '../stock/redis-scripts';
import { reservationWorkflow } from '../workflows';
import {
  awaitHoldUpdate,
  cancelUpdate,
  commitUpdate,
  extendUpdate,
  getReservationQuery,
  searchAttributes,
  workflowIdOf,
  type ReservationView,
} from '../workflows/definitions';
import { AdmissionGate, type CartLine } from './admission';
import { fromTemporal, isUnavailable } from './errors';

const paymentIdSchema = z.string().min(1).max(128);

/** How long an HTTP call waits on Temporal before answering 503. */
const TEMPORAL_DEADLINE_MS = 30_000;
/** How long a buyer waits at the admission gate before going to Temporal anyway. */
const ADMISSION_WAIT_MS = 20_000;

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * What the API does with reservations: always through Temporal (update-with-start, updates,
 * the query), except the cheap refusal of a cart that Redis already shows cannot be held.
 */
export class ReservationService {
  private readonly createBody;
  private readonly extendBody;
  private readonly commitBody = z.strictObject({ paymentId: paymentIdSchema.optional(), items: linesSchema.optional() });
  private readonly cancelBody = z.strictObject({ reason: reasonSchema.optional() });
  private readonly admission = new AdmissionGate();

  constructor(
    private readonly client: Client,
    private readonly redis: StockRedis,
    private readonly config: Pick<Config, 'taskQueue' | 'defaultTtlSeconds' | 'maxTtlSeconds'>,
  ) {
    const ttl = z.number().int().min(1).max(config.maxTtlSeconds);
    this.createBody = z.strictObject({
      reservationId: reservationIdSchema.optional(),
      items: linesSchema,
      ttlSeconds: ttl.optional(),
      customerId: customerIdSchema.optional(),
    });
    this.extendBody = z.strictObject({ ttlSeconds: ttl });
  }

  /** POST /v1/reservations: 201 with a new HELD reservation, 200 for a repeat of the same request. */
  async create(body: unknown): Promise<{ created: boolean; reservation: ReservationView }> {
    const input = parse(this.createBody, body);
    const reservationId = input.reservationId ?? randomUUID();
    const ttlSeconds = input.ttlSeconds ?? this.config.defaultTtlSeconds;
    const requestHash = hashOf({ items: input.items, ttlSeconds, customerId: input.customerId ?? null });
    const admitBy = Date.now() + ADMISSION_WAIT_MS;
    let repeat = false;
    for (;;) {
      const { refusal, available } = await this.readCart(input.items);
      // A repeat of a reservation that already holds (or finished) is not refused for the stock it
      // holds itself. Checked after the shortfall, so a hold that landed in between is seen.
      if (refusal) {
        repeat = Boolean(input.reservationId && (await this.isKnown(input.reservationId, input.items[0]!.sku)));
        if (!repeat) throw refusal;
      }
      const blocked = repeat ? undefined : this.admission.blocked(input.items, available);
      if (!blocked || Date.now() > admitBy) break;
      await this.admission.wait(blocked, 1_000);
    }
    const startToken = randomUUID();
    const workflowId = workflowIdOf(reservationId);
    const start = new WithStartWorkflowOperation(reservationWorkflow, {
      workflowId,
      taskQueue: this.config.taskQueue,
      args: [{ reservationId, items: input.items, ttlSeconds, maxTtlSeconds: this.config.maxTtlSeconds, customerId: input.customerId, requestHash, startToken }],
      // A repeat joins the running workflow; a closed one's id is reused only after a failed run.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      memo: { requestHash },
      typedSearchAttributes: [
        { key: searchAttributes.status, value: 'PENDING' },
        { key: searchAttributes.skus, value: input.items.map((i) => i.sku) },
        ...(input.customerId ? [{ key: searchAttributes.customerId, value: input.customerId }] : []),
      ],
    });
    const leave = this.admission.enter(input.items);
    let held = false;
    try {
      const answer = await this.client.withDeadline(Date.now() + TEMPORAL_DEADLINE_MS, () =>
        this.client.workflow.executeUpdateWithStart(awaitHoldUpdate, { args: [{ requestHash, startToken }], startWorkflowOperation: start }),
      );
      held = true;
      return answer;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError || (err instanceof WorkflowUpdateFailedError && err.cause instanceof WorkflowExecutionAlreadyStartedError)) {
        return { created: false, reservation: await this.closedRepeat(workflowId, requestHash) };
      }
      throw this.mapped(err);
    } finally {
      leave(held);
    }
  }

  /** GET /v1/reservations/:id */
  async get(rawId: unknown): Promise<ReservationView> {
    const id = parse(reservationIdSchema, rawId, 'reservationId');
    try {
      return await this.client.withDeadline(Date.now() + TEMPORAL_DEADLINE_MS, () =>
        this.client.workflow.getHandle(workflowIdOf(id)).query(getReservationQuery),
      );
    } catch (err) {
      throw this.mapped(err, id);
    }
  }

  async commit(rawId: unknown, body: unknown): Promise<ReservationView> {
    const id = parse(reservationIdSchema, rawId, 'reservationId');
    const args = parse(this.commitBody, body ?? {});
    return this.update(id, (h) => h.executeUpdate(commitUpdate, { args: [args] }), (v) => {
      if (v.status === 'COMMITTED') return v; // a repeat of a finished commit: same final view
      throw this.notHeld(v);
    });
  }

  async cancel(rawId: unknown, body: unknown): Promise<ReservationView> {
    const id = parse(reservationIdSchema, rawId, 'reservationId');
    const args = parse(this.cancelBody, body ?? {});
    return this.update(id, (h) => h.executeUpdate(cancelUpdate, { args: [args] }), (v) => {
      if (v.status === 'COMMITTED') throw this.notHeld(v);
      return v;
    });
  }

  async extend(rawId: unknown, body: unknown): Promise<ReservationView> {
    const id = parse(reservationIdSchema, rawId, 'reservationId');
    const args = parse(this.extendBody, body);
    return this.update(id, (h) => h.executeUpdate(extendUpdate, { args: [args] }), (v) => {
      throw this.notHeld(v);
    });
  }

  // ------------------------------------------------------------------ helpers

  /**
   * Sends an update; when the workflow has already closed (a late or repeated call), answers
   * from its final view through `closed` instead.
   */
  private async update(
    id: string,
    send: (handle: ReturnType<Client['workflow']['getHandle']>) => Promise<ReservationView>,
    closed: (view: ReservationView) => ReservationView,
  ): Promise<ReservationView> {
    const handle = this.client.workflow.getHandle(workflowIdOf(id));
    try {
      return await this.client.withDeadline(Date.now() + TEMPORAL_DEADLINE_MS, () => send(handle));
    } catch (err) {
      const refusal = fromTemporal(err);
      if (refusal) throw refusal;
      if (!(err instanceof WorkflowNotFoundError) && !/already completed|workflow execution already/i.test(String((err as Error)?.message))) {
        throw this.mapped(err, id);
      }
    }
    return closed(await this.get(id));
  }

  private notHeld(view: ReservationView): StockholdError {
    return new StockholdError(`RESERVATION_${view.status}` as 'RESERVATION_EXPIRED', `reservation ${view.reservationId} is ${view.status}`, {
      reservationId: view.reservationId,
      status: view.status,
    });
  }

  private mapped(err: unknown, id?: string): unknown {
    const refusal = fromTemporal(err);
    if (refusal) return refusal;
    if (err instanceof WorkflowNotFoundError || (err instanceof Error && /not found/i.test(err.message) && !isUnavailable(err))) {
      return new StockholdError('RESERVATION_NOT_FOUND', `reservation ${id ?? ''} not found`.replace('  ', ' '), id ? { reservationId: id } : {});
    }
    if (isUnavailable(err)) return unavailable('Temporal is unavailable; retry shortly');
    return err;
  }

  /** A repeat of a reservation whose workflow has closed: same body answers its view, another body conflicts. */
  private async closedRepeat(workflowId: string, requestHash: string): Promise<ReservationView> {
    const handle = this.client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    const memo = (description.memo ?? {}) as { requestHash?: string; rejection?: { code: string; message: string; details: Record<string, unknown> } };
    if (memo.requestHash !== requestHash) {
      throw new StockholdError('RESERVATION_ID_CONFLICT', `reservation ${workflowId.replace(/^reservation-/, '')} exists with another body`);
    }
    const view = await handle.query(getReservationQuery);
    if (view.status === 'REJECTED' && memo.rejection?.code) {
      throw new StockholdError(memo.rejection.code as 'INSUFFICIENT_STOCK', memo.rejection.message, memo.rejection.details);
    }
    return view;
  }

  /** Whether Redis knows this reservation id (holding, or finished): then it is a repeat, not a new cart. */
  private async isKnown(reservationId: string, sku: string): Promise<boolean> {
    const [held, done] = await Promise.all([this.redis.hexists(keys.holds(sku), reservationId), this.redis.zscore(keys.done(sku), reservationId)]);
    return held === 1 || done !== null;
  }

  /**
   * The flash-sale fast path: reads the cart's counters from Redis and gives the refusal for a
   * cart that cannot be held, so it is refused without starting a workflow or touching
   * PostgreSQL. (The Lua hold still decides for the rest.)
   */
  private async readCart(items: CartLine[]): Promise<{ refusal?: StockholdError; available: number[] }> {
    const counters = await Promise.all(items.map((i) => this.redis.hmget(keys.stock(i.sku), 'total', 'reserved')));
    const available = counters.map(([total, reserved]) => Number(total ?? 0) - Number(reserved ?? 0));
    for (const [i, [total]] of counters.entries()) {
      const item = items[i]!;
      if (total === null) {
        if ((await this.redis.exists(keys.loaded)) !== 1) return { refusal: unavailable('stock counters are not loaded yet; retry shortly'), available };
        return { refusal: new StockholdError('SKU_NOT_FOUND', `SKU ${item.sku} does not exist`, { sku: item.sku }), available };
      }
      if (available[i]! < item.quantity) {
        const refusal = new StockholdError('INSUFFICIENT_STOCK', `only ${available[i]} of ${item.sku} available, ${item.quantity} requested`, {
          sku: item.sku,
          requested: item.quantity,
          available: Math.max(available[i]!, 0),
        });
        return { refusal, available };
      }
    }
    return { available };
  }
}
