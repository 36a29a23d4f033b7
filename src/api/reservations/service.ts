/**
 * What the API does with reservations: always through Temporal (update-with-start, updates, the
 * query), except the cheap refusal of a cart that Redis already shows cannot be held, and the view
 * of a reservation Temporal no longer keeps (PostgreSQL has it).
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Config } from '../../config';
import {
  locationNotInChannel,
  reservationNotFound,
  reservationNotHeld,
  StockholdError,
  unavailable,
} from '../../domain/errors';
import { DEFAULT_CHANNEL, FINAL_STATUSES, workflowIdOf, type CartLine, type ReservationView } from '../../domain/types';
import type { StockStore } from '../../stock';
import {
  awaitHoldUpdate,
  cancelUpdate,
  commitUpdate,
  extendUpdate,
  getReservationQuery,
  type CancelArgs,
  type CommitArgs,
  type ExtendArgs,
} from '../../workflows/definitions';
import { reservationRequestHash } from '../../domain/request-hash';
import { Admission } from './admission';
import { reservationStart, type StartRequest } from './workflow-start';
import { fromFailure } from '../../domain/failures';
import { isUnavailable } from '../errors';

/** How long a write waits on Temporal before answering 503 (within the contract's 30 s). */
const TEMPORAL_DEADLINE_MS = 25_000;
/** How long a read (the query) waits on Temporal (within the contract's 2 s). */
const TEMPORAL_READ_DEADLINE_MS = 1_500;
/** How long a POST /v1/reservations may take in all (gate and Temporal), within the contract's 30 s. */
const CREATE_DEADLINE_MS = 28_000;
/** How long a buyer waits at the admission gate before going to Temporal anyway. */
const ADMISSION_WAIT_MS = 20_000;

export interface CreateReservation {
  reservationId?: string;
  items: CartLine[];
  ttlSeconds?: number;
  customerId?: string;
  channel?: string;
}

export class ReservationService {
  private readonly admission = new Admission();

  constructor(
    private readonly client: Client,
    private readonly stock: StockStore,
    private readonly config: Pick<Config, 'taskQueue' | 'defaultTtlSeconds' | 'maxTtlSeconds'>,
  ) {}

  /**
   * POST /v1/reservations: `created` for a new HELD reservation, not for a repeat of the same
   * request. Three steps: the pre-check and the admission gates (./admission.ts), then the
   * workflow's update-with-start, whose answer carries the hold's decision (`start`).
   */
  async create(input: CreateReservation): Promise<{ created: boolean; reservation: ReservationView }> {
    const startedAt = Date.now();
    const request: StartRequest = {
      reservationId: input.reservationId ?? randomUUID(),
      items: input.items,
      ttlSeconds: input.ttlSeconds ?? this.config.defaultTtlSeconds,
      customerId: input.customerId,
      ...(input.channel !== undefined ? { channel: input.channel } : {}),
    };
    // Contract v3: the channel exists (CHANNEL_NOT_FOUND) and has each pinned line's location.
    if (input.channel !== undefined || input.items.some((l) => l.locationId !== undefined)) {
      const channel = input.channel ?? DEFAULT_CHANNEL;
      const outside = (locations: readonly string[]) =>
        input.items.find((l) => l.locationId !== undefined && !locations.includes(l.locationId));
      // A refusal is never made on a cached channel: a location just added to it counts.
      if (outside((await this.stock.channelSpec(channel)).locations)) {
        const line = outside((await this.stock.channelSpec(channel, true)).locations);
        if (line) throw locationNotInChannel(line.locationId!, channel, line.sku);
      }
    }
    if (input.reservationId === undefined) return this.admitAndStart(request, false, startedAt);
    // A repeat of a request this process is still working on (waiting at the gate, or in
    // Temporal) joins it, whatever its client did meanwhile (a client that gave up waiting and
    // resent): answered by its pre-check alone, the repeat could be refused while the first is
    // then admitted and holds (the client told 409 would have a hold it never hears of).
    const hash = reservationRequestHash(request);
    const before = this.underway.get(request.reservationId);
    if (before?.hash === hash) return { created: false, reservation: (await before.answer).reservation };
    const answer = this.admitAndStart(request, true, startedAt);
    this.underway.set(request.reservationId, { hash, answer });
    try {
      return await answer;
    } finally {
      if (this.underway.get(request.reservationId)?.answer === answer) this.underway.delete(request.reservationId);
    }
  }

  /** Requests naming their id that this process is working on, by id: what a repeat joins. */
  private readonly underway = new Map<
    string,
    { hash: string; answer: Promise<{ created: boolean; reservation: ReservationView }> }
  >();

  private async admitAndStart(
    request: StartRequest,
    named: boolean,
    startedAt: number,
  ): Promise<{ created: boolean; reservation: ReservationView }> {
    const admitted = await this.admission.admit(this.stock, request, named, startedAt + ADMISSION_WAIT_MS);
    try {
      const answer = await this.start(request, startedAt);
      admitted.leave(true);
      return answer;
    } catch (err) {
      admitted.leave(false);
      throw err;
    }
  }

  /**
   * The reservation's workflow, started (or joined, for a repeat) with update-with-start: the
   * answer comes once the hold is decided, within the contract's 30 s from `startedAt`.
   */
  private async start(
    request: StartRequest,
    startedAt: number,
  ): Promise<{ created: boolean; reservation: ReservationView }> {
    const { reservationId } = request;
    const { workflowId, requestHash, operation, hold } = reservationStart(request, this.config);
    try {
      // Whatever the admission gate took, the answer comes within the contract's 30 s.
      const deadline = Math.min(Date.now() + TEMPORAL_DEADLINE_MS, startedAt + CREATE_DEADLINE_MS);
      return await this.client.withDeadline(deadline, () =>
        this.client.workflow.executeUpdateWithStart(awaitHoldUpdate, {
          args: [hold],
          startWorkflowOperation: operation,
        }),
      );
    } catch (err) {
      if (
        err instanceof WorkflowExecutionAlreadyStartedError ||
        (err instanceof WorkflowUpdateFailedError && err.cause instanceof WorkflowExecutionAlreadyStartedError)
      ) {
        return { created: false, reservation: await this.closedRepeat(workflowId, requestHash) };
      }
      const mapped = this.mapped(err, reservationId);
      // The workflow may have held by now (an answer lost to a deadline). The id lets the client
      // retry into that hold, or cancel it, even when it sent none and the id was made here.
      if (mapped instanceof StockholdError && mapped.code === 'UNAVAILABLE') {
        throw unavailable(`${mapped.message}; retry with reservationId ${reservationId}`, {
          ...mapped.details,
          reservationId,
        });
      }
      throw mapped;
    }
  }

  /**
   * GET /v1/reservations/:id: the workflow's view, with the returns PostgreSQL recorded after the
   * sale; PostgreSQL's own view once Temporal has dropped the closed workflow.
   */
  async get(id: string): Promise<ReservationView> {
    let view: ReservationView;
    try {
      view = await this.client.withDeadline(Date.now() + TEMPORAL_READ_DEADLINE_MS, () =>
        this.client.workflow.getHandle(workflowIdOf(id)).query(getReservationQuery),
      );
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw this.mapped(err, id);
      const recorded = await this.stock.getReservation(id);
      if (!recorded) throw reservationNotFound(id);
      return recorded;
    }
    // Returns happen after the workflow has closed: only PostgreSQL knows them.
    const returned = new Map(
      view.status === 'COMMITTED'
        ? (await this.stock.getReservation(id))?.items.map((l) => [l.sku, l.returnedQuantity])
        : [],
    );
    return { ...view, items: view.items.map((l) => ({ ...l, returnedQuantity: returned.get(l.sku) ?? 0 })) };
  }

  async commit(id: string, args: CommitArgs): Promise<ReservationView> {
    return this.update(
      id,
      (h) => h.executeUpdate(commitUpdate, { args: [args] }),
      (v) => {
        if (v.status === 'COMMITTED') return v; // a repeat of a finished commit: same final view
        throw reservationNotHeld(v.reservationId, v.status);
      },
    );
  }

  async cancel(id: string, args: CancelArgs): Promise<ReservationView> {
    return this.update(
      id,
      (h) => h.executeUpdate(cancelUpdate, { args: [args] }),
      (v) => {
        if (v.status === 'COMMITTED') throw reservationNotHeld(v.reservationId, v.status);
        return v;
      },
    );
  }

  async extend(id: string, args: ExtendArgs): Promise<ReservationView> {
    return this.update(
      id,
      (h) => h.executeUpdate(extendUpdate, { args: [args] }),
      (v) => {
        throw reservationNotHeld(v.reservationId, v.status);
      },
    );
  }

  // ------------------------------------------------------------------ helpers

  /**
   * Sends an update; when the workflow has already closed (a late or repeated call), answers from
   * its final view through `closed` instead.
   */
  private async update(
    id: string,
    send: (handle: WorkflowHandle) => Promise<ReservationView>,
    closed: (view: ReservationView) => ReservationView,
  ): Promise<ReservationView> {
    const handle = this.client.workflow.getHandle(workflowIdOf(id));
    try {
      return await this.client.withDeadline(Date.now() + TEMPORAL_DEADLINE_MS, () => send(handle));
    } catch (err) {
      const refusal = fromFailure(err);
      if (refusal) throw refusal;
      if (
        !(err instanceof WorkflowNotFoundError) &&
        !/already completed|workflow execution already/i.test(String((err as Error)?.message))
      ) {
        throw this.mapped(err, id);
      }
    }
    const view = await this.get(id);
    if (!FINAL_STATUSES.includes(view.status)) throw unavailable(`reservation ${id} is settling; retry shortly`);
    return closed(view);
  }

  private mapped(err: unknown, id: string): unknown {
    const refusal = fromFailure(err);
    if (refusal) return refusal;
    if (err instanceof WorkflowNotFoundError) return reservationNotFound(id);
    if (isUnavailable(err)) return unavailable('Temporal is unavailable; retry shortly');
    return err;
  }

  /** A repeat of a reservation whose workflow has closed: same body answers its view, another body conflicts. */
  private async closedRepeat(workflowId: string, requestHash: string): Promise<ReservationView> {
    const handle = this.client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    const memo = (description.memo ?? {}) as {
      requestHash?: string;
      rejection?: { code: string; message: string; details: Record<string, unknown> };
    };
    if (memo.requestHash !== requestHash) {
      throw new StockholdError(
        'RESERVATION_ID_CONFLICT',
        `reservation ${workflowId.replace(/^reservation-/, '')} exists with another body`,
      );
    }
    const view = await handle.query(getReservationQuery);
    if (view.status === 'REJECTED' && memo.rejection?.code) {
      throw new StockholdError(
        memo.rejection.code as 'INSUFFICIENT_STOCK',
        memo.rejection.message,
        memo.rejection.details,
      );
    }
    return view;
  }
}
