/**
 * The reservation workflow's own logic, with its activities mocked (typed ReservationActivities):
 * which activity it calls, when, how often and with what, and what its updates answer. No Redis, no
 * PostgreSQL: reservation.test.ts covers the activities against the real stores. Time-skipping
 * server: one environment for the file, a fresh worker per test, the shared workflow bundle.
 */
import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type Duration } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { ReservationActivities } from '../../src/activities';
import type { CartLine, ReservationLine } from '../../src/domain/types';
import { ensureSearchAttributes } from '../../src/temporal/search-attributes';
import { reservationWorkflow } from '../../src/workflows';
import {
  awaitHoldUpdate,
  cancelUpdate,
  commitUpdate,
  extendUpdate,
  getReservationQuery,
  paymentFailedSignal,
  paymentSucceededSignal,
  workflowIdOf,
  type CancelArgs,
  type CommitArgs,
  type ExtendArgs,
  type HoldAnswer,
  type PaymentFailedArgs,
  type PaymentSucceededArgs,
  type ReservationInput,
} from '../../src/workflows/definitions';
import { installTestRuntime, taskQueue, timeSkippingEnv, workflowBundle } from '../helpers/temporal';

installTestRuntime();

let env: TestWorkflowEnvironment;
let client: Client;

beforeAll(async () => {
  env = await timeSkippingEnv();
  client = env.client;
  await ensureSearchAttributes(client, 'default');
  await workflowBundle();
});

afterAll(async () => {
  await env?.teardown();
});

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const MAX_TTL_SECONDS = 86_400;
/**
 * The commit is a local activity: while it runs, the worker keeps the workflow task open and only
 * hands the server a heartbeat at 80% of the task timeout, and a message arriving meanwhile waits for
 * that. With the default 10 s it would wait 8 s; the tests that deliver a message while the commit
 * runs shorten the task timeout so that it comes within a second.
 */
const LA_HEARTBEAT_TASK_TIMEOUT: Duration = '1 second';

// ------------------------------------------------------------------ mocked activities

type Activity = keyof ReservationActivities;
type MockedActivities = {
  [K in Activity]: jest.Mock<ReturnType<ReservationActivities[K]>, Parameters<ReservationActivities[K]>>;
};

/** What a real commit returns: each held line with what it sold (all of it when no items are named). */
function soldLines(held: readonly CartLine[], items: readonly CartLine[] | undefined): ReservationLine[] {
  return held.map((l) => ({
    sku: l.sku,
    quantity: l.quantity,
    committedQuantity: items ? (items.find((i) => i.sku === l.sku)?.quantity ?? 0) : l.quantity,
    returnedQuantity: 0,
  }));
}

/** Activities that succeed as the stores would for a reservation holding `held`; tests override one. */
function mockActivities(held: readonly CartLine[]): MockedActivities {
  return {
    holdStock: jest.fn<ReturnType<ReservationActivities['holdStock']>, Parameters<ReservationActivities['holdStock']>>(
      async () => ({ alreadyHeld: false }),
    ),
    commitStock: jest.fn<
      ReturnType<ReservationActivities['commitStock']>,
      Parameters<ReservationActivities['commitStock']>
    >(async (input) => soldLines(held, input.items)),
    releaseStock: jest.fn<
      ReturnType<ReservationActivities['releaseStock']>,
      Parameters<ReservationActivities['releaseStock']>
    >(async () => held.reduce((n, l) => n + l.quantity, 0)),
    extendReservation: jest.fn<
      ReturnType<ReservationActivities['extendReservation']>,
      Parameters<ReservationActivities['extendReservation']>
    >(async () => undefined),
  };
}

/** A promise the test resolves when it chooses, and one that tells when the activity was entered. */
function gate() {
  let open!: () => void;
  let entered!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (entered = resolve));
  return { open, opened, entered, reached };
}

// ------------------------------------------------------------------ worker and workflow

/** When each of a workflow's timers fired, by the server's clock (its TimerFired events). */
async function timersFiredAt(handle: WorkflowHandle): Promise<number[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? [])
    .filter((e) => e.timerFiredEventAttributes)
    .map((e) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6));
}

/** Local activities' longest start-to-close timeout in the workflow (the commit's), and a margin. */
const LOCAL_ACTIVITY_TIMEOUT_MS = 10_000 + 1_000;

/**
 * Runs `fn` with a fresh worker of these activities. A worker whose local activities failed stays
 * up until their start-to-close timers have fired: SDK 1.24's core panics ("receive half not
 * dropped") when such a timer fires after its worker shut down.
 */
async function withWorker<T>(activities: ReservationActivities, fn: (queue: string) => Promise<T>): Promise<T> {
  const queue = taskQueue('wf-mocked');
  let lastFailure = 0;
  const noted = <F extends (...args: never[]) => Promise<unknown>>(activity: F): F =>
    (async (...args: Parameters<F>) => {
      try {
        return await activity(...args);
      } catch (err) {
        // Only attempts that will be retried leave such a timer behind.
        if (!(err instanceof ApplicationFailure && err.nonRetryable)) lastFailure = Date.now();
        throw err;
      }
    }) as F;
  const watched: ReservationActivities = {
    ...activities,
    holdStock: noted(activities.holdStock),
    commitStock: noted(activities.commitStock),
  };
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: queue,
    workflowBundle: await workflowBundle(),
    activities: watched,
  });
  return worker.runUntil(async () => {
    const result = await fn(queue);
    if (lastFailure > 0)
      await new Promise((resolve) => setTimeout(resolve, lastFailure + LOCAL_ACTIVITY_TIMEOUT_MS - Date.now()));
    return result;
  });
}

interface StartOptions {
  ttlSeconds?: number;
  customerId?: string;
  /** Only for the tests that need a message delivered while a local activity runs (see there). */
  workflowTaskTimeout?: Duration;
}

interface Started {
  handle: WorkflowHandle<typeof reservationWorkflow>;
  input: ReservationInput;
  /** The API's awaitHold update, sent with the start: answers once the hold is decided. */
  hold: Promise<HoldAnswer>;
}

const newReservationId = () => `r_${randomUUID().replace(/-/g, '').slice(0, 20)}`;

/**
 * Starts a reservation as the API does (ReservationService.create): update-with-start of workflow
 * `reservation-<id>` with the awaitHold update, so the update reaches the workflow with its start.
 */
async function start(queue: string, items: CartLine[], opts: StartOptions = {}): Promise<Started> {
  const reservationId = newReservationId();
  const input: ReservationInput = {
    reservationId,
    items,
    ttlSeconds: opts.ttlSeconds ?? 600,
    maxTtlSeconds: MAX_TTL_SECONDS,
    customerId: opts.customerId,
    requestHash: 'hash-of-the-body',
    startToken: randomUUID(),
  };
  const operation = new WithStartWorkflowOperation(reservationWorkflow, {
    workflowId: workflowIdOf(reservationId),
    taskQueue: queue,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    ...(opts.workflowTaskTimeout ? { workflowTaskTimeout: opts.workflowTaskTimeout } : {}),
  });
  const hold = client.workflow.executeUpdateWithStart(awaitHoldUpdate, {
    args: [{ requestHash: input.requestHash, startToken: input.startToken }],
    startWorkflowOperation: operation,
  });
  hold.catch(() => undefined); // the test awaits it; until then a refusal is not unhandled
  const handle = await operation.workflowHandle();
  return { handle, input, hold };
}

/** A started reservation whose hold succeeded. */
async function held(queue: string, items: CartLine[], opts: StartOptions = {}) {
  const started = await start(queue, items, opts);
  const answer = await started.hold;
  expect(answer.reservation.status).toBe('HELD');
  return { ...started, answer };
}

/** The ApplicationFailure somewhere down an error's cause chain (update → activity → application). */
function applicationFailureIn(err: unknown): ApplicationFailure | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure) return e;
  }
  return undefined;
}

/** How a call was refused: the failure's type and first details, or what else it threw. */
async function refusal(
  call: Promise<unknown>,
): Promise<{ type: string | null | undefined; details: unknown; error: unknown }> {
  try {
    await call;
  } catch (err) {
    const failure = applicationFailureIn(err);
    return { type: failure?.type, details: failure?.details?.[0], error: err };
  }
  throw new Error('expected the call to be refused, but it succeeded');
}

const status = async (handle: WorkflowHandle) => (await handle.query(getReservationQuery)).status;

/** Malformed payloads, as a caller outside the API (another SDK, the CLI) may send them. */
const malformed = <T>(value: unknown) => value as T;

// ------------------------------------------------------------------ tests

describe('reservationWorkflow with mocked activities (time-skipping server)', () => {
  describe('hold and TTL', () => {
    it('holds once with the lines, customer and deadline, answers HELD, and expires exactly ttlSeconds later', async () => {
      const items = [
        { sku: 'SKU-A', quantity: 2 },
        { sku: 'SKU-B', quantity: 1 },
      ];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input, answer } = await held(queue, items, { ttlSeconds: 600, customerId: 'cust-7' });
        const view = answer.reservation;
        expect(answer.created).toBe(true);
        expect(view).toMatchObject({
          reservationId: input.reservationId,
          status: 'HELD',
          customerId: 'cust-7',
          workflowId: workflowIdOf(input.reservationId),
          items: [
            { sku: 'SKU-A', quantity: 2, committedQuantity: 0, returnedQuantity: 0 },
            { sku: 'SKU-B', quantity: 1, committedQuantity: 0, returnedQuantity: 0 },
          ],
        });
        expect(Date.parse(view.expiresAt) - Date.parse(view.createdAt)).toBe(600 * SECOND);
        expect(acts.holdStock).toHaveBeenCalledTimes(1);
        // `run` fences off the attempts of a run that gave up (see lua/hold.lua).
        const { runId } = await handle.describe();
        expect(acts.holdStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          run: runId,
          items,
          customerId: 'cust-7',
          expiresAt: view.expiresAt,
        });

        // Skipped by the server's clock, which also runs on in real time between two calls: "just
        // before" leaves 30 s of it (room for a loaded machine), "just after" is 1 s past.
        const deadline = Date.parse(view.expiresAt);
        await env.sleep(Math.max(0, deadline - 30 * SECOND - (await env.currentTimeMs())));
        expect(await status(handle)).toBe('HELD');
        expect(acts.releaseStock).not.toHaveBeenCalled();

        await env.sleep(Math.max(0, deadline + 1 * SECOND - (await env.currentTimeMs())));
        const reached = await env.currentTimeMs();
        const final = await handle.result();
        expect(final.status).toBe('EXPIRED');
        // The timer fired at the deadline: not before it, and while the server's clock was being
        // skipped just past it (its TimerFired event, on that clock: no stopwatch).
        const [fired] = await timersFiredAt(handle);
        expect({
          notBefore: fired! >= deadline,
          whileSkippedPastIt: fired! <= reached,
          expiredAfter: Date.parse(final.updatedAt) >= deadline,
        }).toEqual({
          notBefore: true,
          whileSkippedPastIt: true,
          expiredAfter: true,
        });
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
        expect(acts.releaseStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          skus: ['SKU-A', 'SKU-B'],
          status: 'EXPIRED',
        });
        expect(acts.commitStock).not.toHaveBeenCalled();
        expect(acts.extendReservation).not.toHaveBeenCalled();
      });
    });

    it('a repeat of awaitHold with the same body answers created=false; another body is RESERVATION_ID_CONFLICT', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input, answer } = await held(queue, items);
        const repeat = await handle.executeUpdate(awaitHoldUpdate, {
          args: [{ requestHash: input.requestHash, startToken: randomUUID() }],
        });
        expect(repeat).toEqual({ created: false, reservation: answer.reservation });
        const conflict = await refusal(
          handle.executeUpdate(awaitHoldUpdate, {
            args: [{ requestHash: 'another-body', startToken: input.startToken }],
          }),
        );
        expect(conflict.type).toBe('RESERVATION_ID_CONFLICT');
        expect(conflict.details).toEqual({ reservationId: input.reservationId });
        expect(acts.holdStock).toHaveBeenCalledTimes(1);
        await handle.executeUpdate(cancelUpdate, { args: [{}] });
      });
    });

    it('extend moves the deadline: no release at the old deadline, release after the new one, extendReservation told the new expiresAt', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input, answer } = await held(queue, items, { ttlSeconds: 600 });
        await env.sleep(5 * MINUTE);
        const [askedAt, extended, answeredAt] = [
          await env.currentTimeMs(),
          await handle.executeUpdate(extendUpdate, { args: [{ ttlSeconds: 600 }] }),
          await env.currentTimeMs(),
        ];
        expect(extended.status).toBe('HELD');
        // 600 s from the extend, by the server's clock: from a moment between its request and its answer.
        const from = Date.parse(extended.expiresAt) - 600 * SECOND;
        expect({
          from: from >= askedAt && from <= answeredAt,
          movedAtLeast5Minutes: from - Date.parse(answer.reservation.expiresAt) + 600 * SECOND >= 5 * MINUTE,
        }).toEqual({
          from: true,
          movedAtLeast5Minutes: true,
        });
        expect(acts.extendReservation).toHaveBeenCalledTimes(1);
        expect(acts.extendReservation).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          expiresAt: extended.expiresAt,
        });

        await env.sleep(5 * MINUTE + 2 * SECOND); // past the old deadline
        expect(await status(handle)).toBe('HELD');
        expect(acts.releaseStock).not.toHaveBeenCalled();

        const final = await handle.result();
        expect(final.status).toBe('EXPIRED');
        expect(final.expiresAt).toBe(extended.expiresAt);
        expect(Date.parse(final.updatedAt)).toBeGreaterThanOrEqual(Date.parse(extended.expiresAt));
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
        expect(acts.releaseStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          skus: ['SKU-A'],
          status: 'EXPIRED',
        });
      });
    });

    it('a hold refused with INSUFFICIENT_STOCK rejects: awaitHold fails with that type and details, nothing is released', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      const shortfall = { sku: 'SKU-A', requested: 2, available: 1 };
      acts.holdStock.mockImplementation(async () => {
        throw ApplicationFailure.create({
          type: 'INSUFFICIENT_STOCK',
          message: 'only 1 of SKU-A available, 2 requested',
          nonRetryable: true,
          details: [shortfall],
        });
      });
      await withWorker(acts, async (queue) => {
        const { handle, hold } = await start(queue, items);
        const refused = await refusal(hold);
        expect(refused.error).toBeInstanceOf(WorkflowUpdateFailedError);
        expect(refused.type).toBe('INSUFFICIENT_STOCK');
        expect(refused.details).toEqual(shortfall);
        const final = await handle.result();
        expect(final.status).toBe('REJECTED');
        expect(acts.holdStock).toHaveBeenCalledTimes(1); // a business refusal is not retried
        expect(acts.releaseStock).not.toHaveBeenCalled();
        expect(acts.commitStock).not.toHaveBeenCalled();
      });
    });

    it('a hold failing with a plain Error (store outage) is retried, then released as REJECTED, and the run fails UNAVAILABLE', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      acts.holdStock.mockRejectedValue(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
      await withWorker(acts, async (queue) => {
        const { handle, input, hold } = await start(queue, items);
        const refused = await refusal(hold);
        expect(refused.type).toBe('UNAVAILABLE');
        const failed = await refusal(handle.result());
        expect(failed.error).toBeInstanceOf(WorkflowFailedError);
        expect(failed.type).toBe('UNAVAILABLE');
        expect(acts.holdStock).toHaveBeenCalledTimes(3); // the local activity's maximumAttempts
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
        // Only this run is fenced off (run), so the id stays usable for the client's retry.
        expect(acts.releaseStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          skus: ['SKU-A'],
          status: 'REJECTED',
          reason: 'hold failed: stores unavailable',
          run: (await handle.describe()).runId,
        });
        expect(acts.commitStock).not.toHaveBeenCalled();
      });
    });
  });

  describe('commit and cancel', () => {
    it('commit calls commitStock once with the items and paymentId, answers COMMITTED with what was sold, and ends the run with that view', async () => {
      const items = [{ sku: 'SKU-A', quantity: 3 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        const args: CommitArgs = { paymentId: 'pay-1', items: [{ sku: 'SKU-A', quantity: 2 }] };
        const committed = await handle.executeUpdate(commitUpdate, { args: [args] });
        expect(committed.status).toBe('COMMITTED');
        expect(committed.items).toEqual([{ sku: 'SKU-A', quantity: 3, committedQuantity: 2, returnedQuantity: 0 }]);
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        expect(acts.commitStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          items: args.items,
          paymentId: 'pay-1',
        });
        expect(await handle.result()).toEqual(committed);
        expect(acts.releaseStock).not.toHaveBeenCalled();
        expect(acts.extendReservation).not.toHaveBeenCalled();
      });
    });

    it('a repeated commit and a cancel delivered while commitStock runs get the same COMMITTED view and RESERVATION_COMMITTED; commitStock runs once', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      const commitGate = gate();
      acts.commitStock.mockImplementation(async (input) => {
        commitGate.entered();
        await commitGate.opened;
        return soldLines(items, input.items);
      });
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items, { workflowTaskTimeout: LA_HEARTBEAT_TASK_TIMEOUT });
        const args: CommitArgs = { paymentId: 'pay-1' };
        const first = handle.executeUpdate(commitUpdate, { args: [args] });
        await commitGate.reached;
        // Accepted: the workflow ran both handlers, in an activation after the commit's, while the commit runs.
        const [repeat, cancel] = await Promise.all([
          handle.startUpdate(commitUpdate, { args: [args], waitForStage: WorkflowUpdateStage.ACCEPTED }),
          handle.startUpdate(cancelUpdate, {
            args: [{ reason: 'changed mind' }],
            waitForStage: WorkflowUpdateStage.ACCEPTED,
          }),
        ]);
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        commitGate.open();
        const committed = await first;
        expect(committed.status).toBe('COMMITTED');
        expect(await repeat.result()).toEqual(committed);
        const refused = await refusal(cancel.result());
        expect(refused.type).toBe('RESERVATION_COMMITTED');
        expect(refused.details).toEqual({ reservationId: input.reservationId, status: 'COMMITTED' });
        expect(await handle.result()).toEqual(committed);
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        expect(acts.releaseStock).not.toHaveBeenCalled();
      });
    });

    it('cancel calls releaseStock once with CANCELLED and the reason, and ends the run CANCELLED', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        const cancelled = await handle.executeUpdate(cancelUpdate, { args: [{ reason: 'changed mind' }] });
        expect(cancelled.status).toBe('CANCELLED');
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
        expect(acts.releaseStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          skus: ['SKU-A'],
          status: 'CANCELLED',
          reason: 'changed mind',
        });
        expect(await handle.result()).toEqual(cancelled);
        expect(acts.commitStock).not.toHaveBeenCalled();
      });
    });

    it('a cancel delivered while commitStock is in flight waits for the commit and is refused RESERVATION_COMMITTED', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      const commitGate = gate();
      acts.commitStock.mockImplementation(async (input) => {
        commitGate.entered();
        await commitGate.opened;
        return soldLines(items, input.items);
      });
      await withWorker(acts, async (queue) => {
        const { handle } = await held(queue, items, { workflowTaskTimeout: LA_HEARTBEAT_TASK_TIMEOUT });
        const commit = handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'pay-1' }] });
        await commitGate.reached;
        // Accepted: the workflow ran the cancel's handler, in an activation of its own, while the commit runs.
        const cancel = await handle.startUpdate(cancelUpdate, {
          args: [{ reason: 'changed mind' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        commitGate.open();
        expect((await commit).status).toBe('COMMITTED');
        const refused = await refusal(cancel.result());
        expect(refused.type).toBe('RESERVATION_COMMITTED');
        expect((await handle.result()).status).toBe('COMMITTED');
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        expect(acts.releaseStock).not.toHaveBeenCalled();
      });
    });

    it('a commit delivered while the cancel releases waits for it and is refused RESERVATION_CANCELLED', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      const releaseGate = gate();
      acts.releaseStock.mockImplementation(async () => {
        releaseGate.entered();
        await releaseGate.opened;
        return 1;
      });
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        const cancel = handle.executeUpdate(cancelUpdate, { args: [{ reason: 'changed mind' }] });
        await releaseGate.reached;
        const commit = await handle.startUpdate(commitUpdate, {
          args: [{ paymentId: 'pay-1' }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        releaseGate.open();
        expect((await cancel).status).toBe('CANCELLED');
        const refused = await refusal(commit.result());
        expect(refused.type).toBe('RESERVATION_CANCELLED');
        expect(refused.details).toEqual({ reservationId: input.reservationId, status: 'CANCELLED' });
        expect((await handle.result()).status).toBe('CANCELLED');
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
        expect(acts.commitStock).not.toHaveBeenCalled();
      });
    });

    it('an extend delivered while commitStock runs waits for it and is refused RESERVATION_COMMITTED, without extendReservation', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      const commitGate = gate();
      acts.commitStock.mockImplementation(async (input) => {
        commitGate.entered();
        await commitGate.opened;
        return soldLines(items, input.items);
      });
      await withWorker(acts, async (queue) => {
        const { handle, answer } = await held(queue, items, { workflowTaskTimeout: LA_HEARTBEAT_TASK_TIMEOUT });
        const commit = handle.executeUpdate(commitUpdate, { args: [{}] });
        await commitGate.reached;
        const extend = await handle.startUpdate(extendUpdate, {
          args: [{ ttlSeconds: 3_600 }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        commitGate.open();
        const committed = await commit;
        expect(committed.status).toBe('COMMITTED');
        expect(committed.expiresAt).toBe(answer.reservation.expiresAt);
        expect((await refusal(extend.result())).type).toBe('RESERVATION_COMMITTED');
        expect(acts.extendReservation).not.toHaveBeenCalled();
      });
    });

    it('a commitStock that fails twice with a transient error is retried and commits on the third attempt', async () => {
      const items = [{ sku: 'SKU-A', quantity: 3 }];
      const acts = mockActivities(items);
      acts.commitStock
        .mockRejectedValueOnce(new Error('PostgreSQL unreachable (attempt 1)'))
        .mockRejectedValueOnce(new Error('PostgreSQL unreachable (attempt 2)'));
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        const view = await handle.executeUpdate(commitUpdate, { args: [{ items: [{ sku: 'SKU-A', quantity: 2 }] }] });
        expect(view.status).toBe('COMMITTED');
        expect(view.items).toEqual([{ sku: 'SKU-A', quantity: 3, committedQuantity: 2, returnedQuantity: 0 }]);
        expect(acts.commitStock).toHaveBeenCalledTimes(3);
        for (const [call] of acts.commitStock.mock.calls)
          expect(call).toEqual({ reservationId: input.reservationId, items: [{ sku: 'SKU-A', quantity: 2 }] });
        expect(acts.releaseStock).not.toHaveBeenCalled();
      });
    });

    it('a commit the activity refuses with a business code fails the update with that code, without a retry, and the hold stays', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      acts.commitStock.mockImplementation(async (input) => {
        throw ApplicationFailure.create({
          type: 'RESERVATION_EXPIRED',
          message: `reservation ${input.reservationId} is EXPIRED`,
          nonRetryable: true,
          details: [{ reservationId: input.reservationId, status: 'EXPIRED' }],
        });
      });
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        const refused = await refusal(handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'pay-1' }] }));
        expect(refused.error).toBeInstanceOf(WorkflowUpdateFailedError);
        expect(refused.type).toBe('RESERVATION_EXPIRED');
        expect(refused.details).toEqual({ reservationId: input.reservationId, status: 'EXPIRED' });
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        // A failed commit is no settlement: the reservation is still HELD and can be released.
        expect(await status(handle)).toBe('HELD');
        expect((await handle.executeUpdate(cancelUpdate, { args: [{}] })).status).toBe('CANCELLED');
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
      });
    });
    it('a sale PostgreSQL refuses for want of stock (a hold it never recorded) cancels the reservation with that reason and gives the hold back', async () => {
      const items = [{ sku: 'SKU-A', quantity: 3 }];
      const acts = mockActivities(items);
      const shortfall = { sku: 'SKU-A', requested: 3, available: 2 };
      acts.commitStock.mockImplementation(async () => {
        throw ApplicationFailure.create({
          type: 'INSUFFICIENT_STOCK',
          message: 'only 2 of SKU-A available, 3 requested',
          nonRetryable: true,
          details: [shortfall],
        });
      });
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        const refused = await refusal(handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'pay-1' }] }));
        expect({ type: refused.type, details: refused.details }).toEqual({
          type: 'INSUFFICIENT_STOCK',
          details: shortfall,
        });
        expect(acts.releaseStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          skus: ['SKU-A'],
          status: 'CANCELLED',
          reason: 'INSUFFICIENT_STOCK: only 2 of SKU-A available, 3 requested',
        });
        // Final: the run ends CANCELLED (the API answers a repeated commit 409 RESERVATION_CANCELLED from then on).
        expect((await handle.result()).status).toBe('CANCELLED');
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
      });
    });
  });

  describe('a release that finds the sale recorded', () => {
    // A commit can write PostgreSQL in a workflow task Temporal never records (its server killed
    // meanwhile): the run never learns of it, and its expiry or a cancel meets the sale.
    it("the TTL's release finds the reservation sold: it ends COMMITTED with the sold lines, not EXPIRED", async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      acts.releaseStock.mockImplementation(async () => ({ committed: soldLines(items, undefined) }));
      await withWorker(acts, async (queue) => {
        const { handle } = await held(queue, items, { ttlSeconds: 60 });
        await env.sleep('2 minutes');
        const final = await handle.result();
        expect({ status: final.status, items: final.items }).toEqual({
          status: 'COMMITTED',
          items: [{ sku: 'SKU-A', quantity: 2, committedQuantity: 2, returnedQuantity: 0 }],
        });
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
        expect(acts.commitStock).not.toHaveBeenCalled();
      });
    });

    it('a cancel whose release finds the reservation sold is refused RESERVATION_COMMITTED', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      acts.releaseStock.mockImplementation(async () => ({ committed: soldLines(items, undefined) }));
      await withWorker(acts, async (queue) => {
        const { handle } = await held(queue, items);
        const refused = await refusal(handle.executeUpdate(cancelUpdate, { args: [{ reason: 'changed my mind' }] }));
        expect(refused.type).toBe('RESERVATION_COMMITTED');
        expect((await handle.result()).status).toBe('COMMITTED');
      });
    });
  });

  describe('payment signals', () => {
    it('paymentSucceeded twice commits once; a paymentFailed during the commit or after the run changes nothing', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      const commitGate = gate();
      acts.commitStock.mockImplementation(async (input) => {
        commitGate.entered();
        await commitGate.opened;
        return soldLines(items, input.items);
      });
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items, { workflowTaskTimeout: LA_HEARTBEAT_TASK_TIMEOUT });
        await handle.signal(paymentSucceededSignal, { paymentId: 'pay-1' });
        await commitGate.reached;
        await handle.signal(paymentSucceededSignal, { paymentId: 'pay-1' });
        await handle.signal(paymentFailedSignal, { paymentId: 'pay-1', reason: 'late decline' });
        // An update accepted after the signals: by then the workflow has handled them, commit still running.
        await handle.startUpdate(awaitHoldUpdate, {
          args: [{ requestHash: input.requestHash, startToken: input.startToken }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        commitGate.open();
        const final = await handle.result();
        expect(final.status).toBe('COMMITTED');
        expect(final.items).toEqual([{ sku: 'SKU-A', quantity: 2, committedQuantity: 2, returnedQuantity: 0 }]);
        // A signal to the closed run fails at the sender ("workflow execution already completed").
        await expect(handle.signal(paymentFailedSignal, { paymentId: 'pay-1', reason: 'too late' })).rejects.toThrow();
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        expect(acts.commitStock).toHaveBeenCalledWith({ reservationId: input.reservationId, paymentId: 'pay-1' });
        expect(acts.releaseStock).not.toHaveBeenCalled();
      });
    });

    it('paymentSucceeded with items commits those items with its paymentId', async () => {
      const items = [
        { sku: 'SKU-A', quantity: 2 },
        { sku: 'SKU-B', quantity: 1 },
      ];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        await handle.signal(paymentSucceededSignal, { paymentId: 'pay-9', items: [{ sku: 'SKU-A', quantity: 1 }] });
        const final = await handle.result();
        expect(final.status).toBe('COMMITTED');
        expect(final.items).toEqual([
          { sku: 'SKU-A', quantity: 2, committedQuantity: 1, returnedQuantity: 0 },
          { sku: 'SKU-B', quantity: 1, committedQuantity: 0, returnedQuantity: 0 },
        ]);
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        expect(acts.commitStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          items: [{ sku: 'SKU-A', quantity: 1 }],
          paymentId: 'pay-9',
        });
      });
    });

    it('paymentFailed on a HELD reservation releases it as CANCELLED with the given reason', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        await handle.signal(paymentFailedSignal, { paymentId: 'pay-1', reason: 'card declined' });
        expect((await handle.result()).status).toBe('CANCELLED');
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
        expect(acts.releaseStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          skus: ['SKU-A'],
          status: 'CANCELLED',
          reason: 'card declined',
        });
        expect(acts.commitStock).not.toHaveBeenCalled();
      });
    });
  });

  describe('malformed messages from outside the API', () => {
    it('a commit of more than held is QUANTITY_EXCEEDS_HOLD and the reservation stays HELD', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle } = await held(queue, items);
        const over = await refusal(
          handle.executeUpdate(commitUpdate, { args: [{ items: [{ sku: 'SKU-A', quantity: 3 }] }] }),
        );
        expect(over.type).toBe('QUANTITY_EXCEEDS_HOLD');
        expect(over.details).toEqual({ sku: 'SKU-A', requested: 3, held: 2 });
        const unknown = await refusal(
          handle.executeUpdate(commitUpdate, { args: [{ items: [{ sku: 'SKU-Z', quantity: 1 }] }] }),
        );
        expect(unknown.type).toBe('QUANTITY_EXCEEDS_HOLD');
        expect(unknown.details).toEqual({ sku: 'SKU-Z', requested: 1, held: 0 });
        expect(await status(handle)).toBe('HELD');
        expect(acts.commitStock).not.toHaveBeenCalled();
        await handle.executeUpdate(cancelUpdate, { args: [{}] });
      });
    });

    it('commit items that are not valid lines are INVALID_REQUEST naming the field, and the reservation stays HELD', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle } = await held(queue, items);
        const cases: [unknown, string][] = [
          [{ items: [{ sku: 'SKU-A', quantity: 0 }] }, 'items.0.quantity'],
          [{ items: 'SKU-A' }, 'items'],
          [{ items: [] }, 'items'],
          [{ paymentId: 42 }, 'paymentId'],
          [{ paymentId: 'pay\u0000-1' }, 'paymentId'],
          [{ paymentId: 'pay\ud800' }, 'paymentId'],
        ];
        for (const [args, field] of cases) {
          const refused = await refusal(handle.executeUpdate(commitUpdate, { args: [malformed<CommitArgs>(args)] }));
          expect({ args, type: refused.type, field: (refused.details as { field?: string })?.field }).toEqual({
            args,
            type: 'INVALID_REQUEST',
            field,
          });
        }
        expect(await status(handle)).toBe('HELD');
        expect(acts.commitStock).not.toHaveBeenCalled();
        await handle.executeUpdate(cancelUpdate, { args: [{}] });
      });
    });

    it('a cancel whose reason is not 1..500 characters of text is INVALID_REQUEST naming reason, and nothing is released', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle } = await held(queue, items);
        for (const reason of [42, '', 'x'.repeat(501), 'changed\u0000mind', 'changed\u001bmind', 'a\ud800']) {
          const refused = await refusal(
            handle.executeUpdate(cancelUpdate, { args: [malformed<CancelArgs>({ reason })] }),
          );
          expect({ reason, type: refused.type, field: (refused.details as { field?: string })?.field }).toEqual({
            reason,
            type: 'INVALID_REQUEST',
            field: 'reason',
          });
        }
        expect(await status(handle)).toBe('HELD');
        expect(acts.releaseStock).not.toHaveBeenCalled();
        await handle.executeUpdate(cancelUpdate, { args: [{}] });
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
      });
    });

    it('extend with ttlSeconds 0, over maxTtlSeconds or not a number is INVALID_REQUEST and leaves the deadline', async () => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, answer } = await held(queue, items);
        for (const ttlSeconds of [0, MAX_TTL_SECONDS + 1, 1.5, '600', undefined]) {
          const refused = await refusal(
            handle.executeUpdate(extendUpdate, { args: [malformed<ExtendArgs>({ ttlSeconds })] }),
          );
          expect({ ttlSeconds, type: refused.type, field: (refused.details as { field?: string })?.field }).toEqual({
            ttlSeconds,
            type: 'INVALID_REQUEST',
            field: 'ttlSeconds',
          });
        }
        const view = await handle.query(getReservationQuery);
        expect(view.status).toBe('HELD');
        expect(view.expiresAt).toBe(answer.reservation.expiresAt);
        expect(acts.extendReservation).not.toHaveBeenCalled();
        await handle.executeUpdate(cancelUpdate, { args: [{}] });
      });
    });

    it('a paymentSucceeded without a paymentId, with one that is not a string, or with items over the hold is ignored', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        await handle.signal(paymentSucceededSignal, malformed<PaymentSucceededArgs>({ paymentId: 42 }));
        await handle.signal(paymentSucceededSignal, malformed<PaymentSucceededArgs>({}));
        await handle.signal(paymentSucceededSignal, malformed<PaymentSucceededArgs>(undefined));
        await handle.signal(
          paymentSucceededSignal,
          malformed<PaymentSucceededArgs>({ items: [{ sku: 'SKU-A', quantity: 1 }] }),
        );
        await handle.signal(paymentSucceededSignal, { paymentId: 'pay-1', items: [{ sku: 'SKU-A', quantity: 3 }] });
        // An update after the signals is handled after them: a barrier that changes nothing.
        const after = await handle.executeUpdate(awaitHoldUpdate, {
          args: [{ requestHash: input.requestHash, startToken: input.startToken }],
        });
        expect(after.reservation.status).toBe('HELD');
        expect(await status(handle)).toBe('HELD');
        expect(acts.commitStock).not.toHaveBeenCalled();
        await handle.executeUpdate(cancelUpdate, { args: [{}] });
        expect(acts.commitStock).not.toHaveBeenCalled();
      });
    });

    it('a paymentSucceeded whose paymentId holds a NUL (or a lone surrogate) is ignored: nothing is committed', async () => {
      const items = [{ sku: 'SKU-A', quantity: 2 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        await handle.signal(paymentSucceededSignal, { paymentId: 'pay\u0000-1' });
        await handle.signal(paymentSucceededSignal, { paymentId: 'pay-\udc00' });
        // An update after the signals is handled after them: a barrier that changes nothing.
        const after = await handle.executeUpdate(awaitHoldUpdate, {
          args: [{ requestHash: input.requestHash, startToken: input.startToken }],
        });
        expect(after.reservation.status).toBe('HELD');
        expect(acts.commitStock).not.toHaveBeenCalled();
        // The reservation is untouched: a valid payment still commits it.
        await handle.signal(paymentSucceededSignal, { paymentId: 'pay-1' });
        expect((await handle.result()).status).toBe('COMMITTED');
        expect(acts.commitStock).toHaveBeenCalledTimes(1);
        expect(acts.commitStock).toHaveBeenCalledWith({ reservationId: input.reservationId, paymentId: 'pay-1' });
      });
    });

    it.each([
      ['with a reason holding a NUL', { paymentId: 'pay-1', reason: 'card\u0000declined' }],
      ['with a reason holding a control character', { reason: 'card\u0007declined' }],
      ['with a reason of 501 characters', { reason: 'r'.repeat(501) }],
      ['without a reason', { paymentId: 'pay-1' }],
      ['with an empty reason', { reason: '' }],
      ['with a reason that is not text', { reason: 42 }],
      ['with no payload at all', undefined],
    ])('a paymentFailed %s cancels with the reason "payment failed"', async (_, payload) => {
      const items = [{ sku: 'SKU-A', quantity: 1 }];
      const acts = mockActivities(items);
      await withWorker(acts, async (queue) => {
        const { handle, input } = await held(queue, items);
        await handle.signal(paymentFailedSignal, malformed<PaymentFailedArgs>(payload));
        expect((await handle.result()).status).toBe('CANCELLED');
        expect(acts.releaseStock).toHaveBeenCalledTimes(1);
        expect(acts.releaseStock).toHaveBeenCalledWith({
          reservationId: input.reservationId,
          skus: ['SKU-A'],
          status: 'CANCELLED',
          reason: 'payment failed',
        });
      });
    });
  });
});
