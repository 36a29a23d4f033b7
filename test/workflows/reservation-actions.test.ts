/**
 * What each reservation path costs in Temporal Cloud Actions (counted from the run's history by
 * bench/capacity-actions.ts, the rules of https://docs.temporal.io/cloud/actions), and that the
 * `fewer-actions` patch costs nothing the Web UI would miss: upserts carry only what changed, the
 * search attributes end as they did before, and an extend that moves the deadline later keeps the
 * running TTL timer (one Action less) while the reservation still expires at the new deadline.
 * Time-skipping server, mocked activities.
 */
import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { countActions } from '../../bench/capacity-actions';
import type { ReservationActivities } from '../../src/activities';
import type { CartLine } from '../../src/domain/types';
import { ensureSearchAttributes } from '../../src/temporal/search-attributes';
import { reservationWorkflow } from '../../src/workflows';
import {
  awaitHoldUpdate,
  cancelUpdate,
  commitUpdate,
  extendUpdate,
  paymentSucceededSignal,
  searchableSkus,
  searchAttributes,
  workflowIdOf,
  type ReservationInput,
} from '../../src/workflows/definitions';
import { FEWER_ACTIONS } from '../../src/workflows/reservation-state';
import { installTestRuntime, taskQueue, timeSkippingEnv, workflowBundle } from '../helpers/temporal';

installTestRuntime();

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await timeSkippingEnv();
  await ensureSearchAttributes(env.client, 'default');
  await workflowBundle();
});

afterAll(async () => {
  await env?.teardown();
});

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const E = temporal.api.enums.v1.EventType;

function activities(items: readonly CartLine[], holdRefused = false): ReservationActivities {
  return {
    holdStock: async () => {
      if (holdRefused) {
        const { ApplicationFailure } = await import('@temporalio/common');
        throw ApplicationFailure.create({
          type: 'INSUFFICIENT_STOCK',
          message: 'not enough',
          nonRetryable: true,
          details: [{ sku: items[0]!.sku }],
        });
      }
      return { alreadyHeld: false };
    },
    commitStock: async () =>
      items.map((l) => ({ sku: l.sku, quantity: l.quantity, committedQuantity: l.quantity, returnedQuantity: 0 })),
    releaseStock: async () => items.reduce((n, l) => n + l.quantity, 0),
    extendReservation: async () => undefined,
  };
}

/** Starts a reservation as the API does: update-with-start, with the start's search attributes. */
async function reserve(queue: string, items: CartLine[], ttlSeconds = 600, customerId = 'cust-1') {
  const reservationId = `r_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const input: ReservationInput = {
    reservationId,
    items,
    ttlSeconds,
    maxTtlSeconds: 86_400,
    customerId,
    requestHash: 'h',
    startToken: randomUUID(),
  };
  const operation = new WithStartWorkflowOperation(reservationWorkflow, {
    workflowId: workflowIdOf(reservationId),
    taskQueue: queue,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    memo: { requestHash: 'h' },
    typedSearchAttributes: [
      { key: searchAttributes.status, value: 'PENDING' },
      { key: searchAttributes.skus, value: searchableSkus(items.map((i) => i.sku)) },
      { key: searchAttributes.customerId, value: customerId },
    ],
  });
  const hold = env.client.workflow.executeUpdateWithStart(awaitHoldUpdate, {
    args: [{ requestHash: 'h', startToken: input.startToken }],
    startWorkflowOperation: operation,
  });
  hold.catch(() => undefined);
  return { handle: await operation.workflowHandle(), hold };
}

async function run<T>(acts: ReservationActivities, fn: (queue: string) => Promise<T>): Promise<T> {
  const queue = taskQueue('wf-actions');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: queue,
    workflowBundle: await workflowBundle(),
    activities: acts,
  });
  return worker.runUntil(() => fn(queue));
}

/** The keys each (non-version) upsert of the run carried, in order. */
async function upserts(handle: WorkflowHandle): Promise<string[][]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.eventType === E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    .map((e) =>
      Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}).sort(),
    )
    .filter((keys) => !(keys.length === 1 && keys[0] === 'TemporalChangeVersion'));
}

async function searchAttributesOf(handle: WorkflowHandle) {
  const { typedSearchAttributes } = await handle.describe();
  return {
    status: typedSearchAttributes.get(searchAttributes.status),
    skus: typedSearchAttributes.get(searchAttributes.skus),
    customerId: typedSearchAttributes.get(searchAttributes.customerId),
    expiresAt: typedSearchAttributes.get(searchAttributes.expiresAt)?.toISOString(),
  };
}

const items = [{ sku: 'SKU-ACT', quantity: 1 }];

/** When each of a workflow's timers fired, by the server's clock (its TimerFired events). */
async function timersFiredAt(handle: WorkflowHandle): Promise<number[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? [])
    .filter((e) => e.timerFiredEventAttributes)
    .map((e) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6));
}

describe('Temporal Cloud Actions per reservation (fewer-actions patch)', () => {
  it('reserve → commit costs 8 Actions; the HELD upsert carries only status and deadline, the COMMITTED one only the status', async () => {
    await run(activities(items), async (queue) => {
      const { handle, hold } = await reserve(queue, items);
      const held = (await hold).reservation;
      await handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'p-1' }] });
      await handle.result();
      const actions = countActions(await handle.fetchHistory());
      expect(actions).toMatchObject({
        total: 8,
        start: 1,
        update: 2,
        timer: 1,
        localActivityTasks: 2,
        upsert: 2,
        activity: 0,
      });
      expect(actions.patches).toContain(FEWER_ACTIONS);
      expect(actions.free.patchOnlyTasks).toBe(0); // the patch marker shares the hold's task
      expect(await upserts(handle)).toEqual([['ReservationExpiresAt', 'ReservationStatus'], ['ReservationStatus']]);
      // What the Web UI filters on is what the full upserts left.
      expect(await searchAttributesOf(handle)).toEqual({
        status: 'COMMITTED',
        skus: ['SKU-ACT'],
        customerId: 'cust-1',
        expiresAt: held.expiresAt,
      });
    });
  });

  it('payment signal costs 8, cancel 8, expiry 7, a refused hold 4 (its memo upsert is free)', async () => {
    await run(activities(items), async (queue) => {
      const signalled = await reserve(queue, items);
      await signalled.hold;
      await signalled.handle.signal(paymentSucceededSignal, { paymentId: 'p-2' });
      await signalled.handle.result();
      expect(countActions(await signalled.handle.fetchHistory())).toMatchObject({ total: 8, signal: 1, update: 1 });

      const cancelled = await reserve(queue, items);
      await cancelled.hold;
      await cancelled.handle.executeUpdate(cancelUpdate, { args: [{}] });
      expect(countActions(await cancelled.handle.fetchHistory())).toMatchObject({
        total: 8,
        activity: 1,
        localActivityTasks: 1,
      });

      const expiring = await reserve(queue, items, 60);
      await expiring.hold;
      await env.sleep(2 * MINUTE);
      expect((await expiring.handle.result()).status).toBe('EXPIRED');
      expect(countActions(await expiring.handle.fetchHistory())).toMatchObject({ total: 7, timer: 1, activity: 1 });
      expect(await searchAttributesOf(expiring.handle)).toMatchObject({ status: 'EXPIRED', customerId: 'cust-1' });
    });
    await run(activities(items, true), async (queue) => {
      const rejected = await reserve(queue, items);
      await expect(rejected.hold).rejects.toThrow();
      await rejected.handle.result();
      const actions = countActions(await rejected.handle.fetchHistory());
      expect(actions).toMatchObject({
        total: 4,
        upsert: 1,
        free: { memoUpserts: 1, versionUpserts: 1, patchOnlyTasks: 0 },
      });
      expect(await upserts(rejected.handle)).toEqual([['ReservationExpiresAt', 'ReservationStatus']]);
      expect(await searchAttributesOf(rejected.handle)).toMatchObject({
        status: 'REJECTED',
        skus: ['SKU-ACT'],
        customerId: 'cust-1',
      });
    });
  });

  it('an extend to a later deadline keeps the running timer: reserve → extend → commit costs 11 Actions (12 before), one timer', async () => {
    await run(activities(items), async (queue) => {
      const { handle, hold } = await reserve(queue, items, 600);
      await hold;
      const extended = await handle.executeUpdate(extendUpdate, { args: [{ ttlSeconds: 1_200 }] });
      await handle.executeUpdate(commitUpdate, { args: [{}] });
      await handle.result();
      expect(countActions(await handle.fetchHistory())).toMatchObject({
        total: 11,
        timer: 1,
        upsert: 3,
        activity: 1,
        update: 3,
      });
      expect(await upserts(handle)).toEqual([
        ['ReservationExpiresAt', 'ReservationStatus'],
        ['ReservationExpiresAt'],
        ['ReservationStatus'],
      ]);
      expect((await searchAttributesOf(handle)).expiresAt).toBe(extended.expiresAt);
    });
  });

  it('a kept timer still expires the reservation at the extended deadline, not at the old one', async () => {
    await run(activities(items), async (queue) => {
      const { handle, hold } = await reserve(queue, items, 600);
      await hold;
      const extended = await handle.executeUpdate(extendUpdate, { args: [{ ttlSeconds: 1_200 }] });
      await env.sleep(11 * MINUTE); // past the old deadline
      const { status } = await handle.describe();
      expect(status.name).toBe('RUNNING');
      await env.sleep(10 * MINUTE); // past the new one
      const final = await handle.result();
      expect(final.status).toBe('EXPIRED');
      expect(Date.parse(final.updatedAt)).toBeGreaterThanOrEqual(Date.parse(extended.expiresAt));
      // The old timer, then one for the rest: as many timers as restarting it at the extend.
      expect(countActions(await handle.fetchHistory()).timer).toBe(2);
    });
  });

  it('an extend to an earlier deadline restarts the timer and expires then', async () => {
    await run(activities(items), async (queue) => {
      const { handle, hold } = await reserve(queue, items, 3_600);
      await hold;
      const shortened = await handle.executeUpdate(extendUpdate, { args: [{ ttlSeconds: 60 }] });
      await env.sleep(2 * MINUTE);
      const reached = await env.currentTimeMs();
      const final = await handle.result();
      expect(final.status).toBe('EXPIRED');
      expect(final.expiresAt).toBe(shortened.expiresAt);
      // Then: its last timer fired at the new deadline, within the 2 minutes skipped (the old one was an hour away).
      const fired = (await timersFiredAt(handle)).at(-1)!;
      expect({ notBefore: fired >= Date.parse(shortened.expiresAt), withinTheSkip: fired <= reached }).toEqual({
        notBefore: true,
        withinTheSkip: true,
      });
      expect(countActions(await handle.fetchHistory()).timer).toBe(2);
    });
  });
});
