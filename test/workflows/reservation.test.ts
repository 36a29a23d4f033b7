import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateStage, type Client } from '@temporalio/client';
import { ApplicationFailure, type Duration } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities, type ReservationActivities } from '../../src/activities';
import { ReservationService } from '../../src/api/reservations/service';
import type { StockholdError } from '../../src/domain/errors';
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
  type ReservationInput,
} from '../../src/workflows/definitions';
import { waitFor } from '../helpers/client';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, newSku, testStock } from '../helpers/stock';
import { ensureSearchAttributes } from '../../src/temporal/search-attributes';
import { installTestRuntime, taskQueue, timeSkippingEnv, workflowBundle } from '../helpers/temporal';

installTestRuntime();

const clients = testStock();
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
  await clients.close();
});

const MINUTE = 60_000;

async function withWorker<T>(
  fn: (queue: string) => Promise<T>,
  activities: ReservationActivities = createActivities(clients.stock),
): Promise<T> {
  const queue = taskQueue('wf');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: queue,
    workflowBundle: await workflowBundle(),
    activities,
  });
  return worker.runUntil(fn(queue));
}

/**
 * The commit is a local activity: while it runs, the worker holds the workflow task and hands the
 * server a heartbeat only at 80% of the task timeout; a message sent meanwhile waits for it. The
 * tests that deliver a message while the commit runs shorten the task timeout to get it in a second.
 */
const LA_HEARTBEAT_TASK_TIMEOUT: Duration = '1 second';

/** A promise the test opens when it chooses, and one that tells when the activity was entered. */
function gate() {
  let open!: () => void;
  let entered!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (entered = resolve));
  return { open, opened, entered, reached };
}

async function start(queue: string, sku: string, quantity = 1, ttlSeconds = 600, workflowTaskTimeout?: Duration) {
  const reservationId = uniqueId();
  const input: ReservationInput = {
    reservationId,
    items: [{ sku, quantity }],
    ttlSeconds,
    maxTtlSeconds: 86_400,
    requestHash: 'h',
    startToken: randomUUID(),
  };
  const handle = await client.workflow.start(reservationWorkflow, {
    workflowId: workflowIdOf(reservationId),
    taskQueue: queue,
    args: [input],
    ...(workflowTaskTimeout ? { workflowTaskTimeout } : {}),
  });
  const answer = await handle.executeUpdate(awaitHoldUpdate, {
    args: [{ requestHash: 'h', startToken: input.startToken }],
  });
  return { handle, reservationId, answer };
}

async function refusalCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
    if (cause instanceof ApplicationFailure) return cause.type ?? undefined;
    return (err as Error).name;
  }
  return undefined;
}

async function reservationStatus(reservationId: string): Promise<string | undefined> {
  const r = await clients.db.query<{ status: string }>('SELECT status FROM reservations WHERE id = $1', [
    reservationId,
  ]);
  return r.rows[0]?.status;
}

describe('reservationWorkflow (time-skipping server, real Redis and PostgreSQL)', () => {
  it('a 10-minute TTL expires and releases the hold', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    await withWorker(async (queue) => {
      const { handle, reservationId, answer } = await start(queue, sku, 2);
      expect(answer).toMatchObject({ created: true, reservation: { status: 'HELD' } });
      expect((await clients.stock.getStock(sku)).reserved).toBe(2);
      const final = await handle.result(); // the server skips the 10 minutes
      expect(final.status).toBe('EXPIRED');
      expect(await reservationStatus(reservationId)).toBe('EXPIRED');
      expect(await clients.stock.getStock(sku)).toMatchObject({ total: 5, reserved: 0 });
    });
    await expectConsistent(clients, sku);
  });

  it('extend moves the deadline: still held past the first TTL, expired after the new one', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    await withWorker(async (queue) => {
      const { handle } = await start(queue, sku, 1, 600);
      await env.sleep(5 * MINUTE);
      const [askedAt, extended, answeredAt] = [
        await env.currentTimeMs(),
        await handle.executeUpdate(extendUpdate, { args: [{ ttlSeconds: 600 }] }),
        await env.currentTimeMs(),
      ];
      // 600 s from the extend, by the server's clock: from a moment between its request and its answer.
      const from = Date.parse(extended.expiresAt) - 10 * MINUTE;
      expect({ from: from >= askedAt && from <= answeredAt }).toEqual({ from: true });
      await env.sleep(7 * MINUTE); // 12 minutes in: past the first deadline
      expect((await handle.query(getReservationQuery)).status).toBe('HELD');
      expect((await clients.stock.getStock(sku)).reserved).toBe(1);
      expect((await handle.result()).status).toBe('EXPIRED');
      expect((await clients.stock.getStock(sku)).reserved).toBe(0);
    });
    await expectConsistent(clients, sku);
  });

  it('a commit just before expiry sells; a commit just after expiry is RESERVATION_EXPIRED', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    await withWorker(async (queue) => {
      const before = await start(queue, sku, 1, 600);
      const after = await start(queue, sku, 1, 600);
      // Skipped to each deadline by the server's clock, which also runs on in real time between
      // two calls: "just before" leaves 30 s of it, room for a loaded machine, not 2 s.
      const skipTo = async (at: number) => env.sleep(Math.max(0, at - (await env.currentTimeMs())));
      await skipTo(Date.parse(before.answer.reservation.expiresAt) - 30_000);
      expect((await before.handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'p1' }] })).status).toBe(
        'COMMITTED',
      );
      await skipTo(Date.parse(after.answer.reservation.expiresAt) + 1_000);
      // Its timer has fired; its release (real stores) ends the run as EXPIRED.
      expect(
        await waitFor(
          async () => (await after.handle.query(getReservationQuery)).status,
          (s) => s !== 'HELD',
          50,
        ),
      ).toBe('EXPIRED');
      // What the HTTP API answers for the late commit (the run has closed by now).
      const service = new ReservationService(client, clients.stock, {
        taskQueue: queue,
        defaultTtlSeconds: 600,
        maxTtlSeconds: 86_400,
      });
      const late = await service.commit(after.reservationId, {}).then(
        () => 'committed',
        (err: StockholdError) => err.code,
      );
      expect(late).toBe('RESERVATION_EXPIRED');
      expect(await clients.stock.getStock(sku)).toMatchObject({ total: 4, reserved: 0 });
    });
    await expectConsistent(clients, sku);
  });

  it('duplicate paymentSucceeded signals sell once; a paymentFailed after the run closed COMMITTED is refused by Temporal (WorkflowNotFoundError) and changes nothing', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    await withWorker(async (queue) => {
      const { handle, reservationId } = await start(queue, sku, 2);
      await handle.signal(paymentSucceededSignal, { paymentId: 'pay-1' });
      await handle.signal(paymentSucceededSignal, { paymentId: 'pay-1' });
      const final = await handle.result();
      expect(final.status).toBe('COMMITTED');
      expect(final.items).toEqual([{ sku, quantity: 2, committedQuantity: 2, returnedQuantity: 0 }]);
      expect((await handle.describe()).status.name).toBe('COMPLETED');

      // Truly late: the run has closed, so the server refuses the signal at the sender.
      await expect(handle.signal(paymentFailedSignal, { reason: 'late decline' })).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
      expect(await reservationStatus(reservationId)).toBe('COMMITTED');
      expect((await handle.describe()).status.name).toBe('COMPLETED');
      const sales = await clients.db.query(
        `SELECT * FROM stock_movements WHERE reservation_id = $1 AND kind = 'sale'`,
        [reservationId],
      );
      expect(sales.rowCount).toBe(1);
      expect(await clients.stock.getStock(sku)).toMatchObject({ total: 3, reserved: 0 });
    });
    await expectConsistent(clients, sku);
  });

  it('paymentFailed cancels and gives the hold back', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    await withWorker(async (queue) => {
      const { handle, reservationId } = await start(queue, sku, 2);
      await handle.signal(paymentFailedSignal, { reason: 'card declined' });
      expect((await handle.result()).status).toBe('CANCELLED');
      expect(await reservationStatus(reservationId)).toBe('CANCELLED');
    });
    expect((await clients.stock.getStock(sku)).reserved).toBe(0);
    await expectConsistent(clients, sku);
  });

  it('a cancel delivered while the commit runs (in an activation of its own) waits for it and is refused RESERVATION_COMMITTED; the sale stands', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const real = createActivities(clients.stock);
    const commitGate = gate();
    const gated: ReservationActivities = {
      ...real,
      async commitStock(input) {
        commitGate.entered();
        await commitGate.opened;
        return real.commitStock(input);
      },
    };
    await withWorker(async (queue) => {
      const { handle, reservationId } = await start(queue, sku, 2, 600, LA_HEARTBEAT_TASK_TIMEOUT);
      const commit = handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'pay-1' }] });
      await commitGate.reached;
      // Accepted: the workflow ran the cancel's handler while the commit was in flight.
      const cancel = await handle.startUpdate(cancelUpdate, {
        args: [{ reason: 'changed mind' }],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      expect(await reservationStatus(reservationId)).toBe('HELD');
      commitGate.open();
      expect((await commit).status).toBe('COMMITTED');
      expect(await refusalCode(cancel.result())).toBe('RESERVATION_COMMITTED');
      expect((await handle.result()).status).toBe('COMMITTED');
      expect(await reservationStatus(reservationId)).toBe('COMMITTED');
    }, gated);
    const sales = await clients.db.query<{ delta: string }>(
      `SELECT delta FROM stock_movements WHERE sku = $1 AND kind = 'sale'`,
      [sku],
    );
    expect(sales.rows).toEqual([{ delta: '-2' }]);
    expect(await clients.stock.getStock(sku)).toMatchObject({ total: 8, reserved: 0 });
    await expectConsistent(clients, sku);
  });

  it('a commit delivered while the cancel releases (in an activation of its own) waits for it and is refused RESERVATION_CANCELLED; nothing is sold', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    const real = createActivities(clients.stock);
    const releaseGate = gate();
    const gated: ReservationActivities = {
      ...real,
      async releaseStock(input) {
        releaseGate.entered();
        await releaseGate.opened;
        return real.releaseStock(input);
      },
    };
    await withWorker(async (queue) => {
      const { handle, reservationId } = await start(queue, sku, 2);
      const cancel = handle.executeUpdate(cancelUpdate, { args: [{ reason: 'changed mind' }] });
      await releaseGate.reached;
      const commit = await handle.startUpdate(commitUpdate, {
        args: [{ paymentId: 'pay-1' }],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      expect((await clients.stock.getStock(sku)).reserved).toBe(2);
      releaseGate.open();
      expect((await cancel).status).toBe('CANCELLED');
      expect(await refusalCode(commit.result())).toBe('RESERVATION_CANCELLED');
      expect((await handle.result()).status).toBe('CANCELLED');
      expect(await reservationStatus(reservationId)).toBe('CANCELLED');
    }, gated);
    const sales = await clients.db.query(`SELECT 1 FROM stock_movements WHERE sku = $1 AND kind = 'sale'`, [sku]);
    expect(sales.rowCount).toBe(0);
    expect(await clients.stock.getStock(sku)).toMatchObject({ total: 10, reserved: 0 });
    await expectConsistent(clients, sku);
  });

  // Both updates sent at once usually reach the workflow in one activation, so this proves that the
  // handlers exclude each other (one settlement, the other refused with its status), not a race
  // with a settlement in flight (the two tests above deliver them while the other one runs).
  it("a commit and a cancel sent at once: exactly one settles, the other is refused with the winner's status, and the stock matches the winner", async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 10);
    await withWorker(async (queue) => {
      for (let round = 0; round < 4; round++) {
        const { handle } = await start(queue, sku, 1);
        const [commit, cancel] = await Promise.allSettled([
          handle.executeUpdate(commitUpdate, { args: [{}] }),
          handle.executeUpdate(cancelUpdate, { args: [{ reason: 'changed mind' }] }),
        ]);
        const final = await handle.result();
        if (final.status === 'COMMITTED') {
          expect(commit.status).toBe('fulfilled');
          expect(
            await refusalCode(cancel.status === 'rejected' ? Promise.reject(cancel.reason) : Promise.resolve()),
          ).toBe('RESERVATION_COMMITTED');
        } else {
          expect(final.status).toBe('CANCELLED');
          expect(cancel.status).toBe('fulfilled');
          expect(
            await refusalCode(commit.status === 'rejected' ? Promise.reject(commit.reason) : Promise.resolve()),
          ).toBe('RESERVATION_CANCELLED');
        }
      }
    });
    const sold = await clients.db.query<{ n: string }>(
      `SELECT COUNT(*) AS n FROM stock_movements WHERE sku = $1 AND kind = 'sale'`,
      [sku],
    );
    expect((await clients.stock.getStock(sku)).total).toBe(10 - Number(sold.rows[0]!.n));
    await expectConsistent(clients, sku);
  });

  it('a commit activity that fails twice and then succeeds leaves the stock right', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    const real = createActivities(clients.stock);
    let calls = 0;
    const flaky: ReservationActivities = {
      ...real,
      async commitStock(input) {
        calls += 1;
        if (calls <= 2) throw new Error(`PostgreSQL unreachable (attempt ${calls})`);
        return real.commitStock(input);
      },
    };
    await withWorker(async (queue) => {
      const { handle, reservationId } = await start(queue, sku, 3);
      const view = await handle.executeUpdate(commitUpdate, { args: [{ items: [{ sku, quantity: 2 }] }] });
      expect(view.status).toBe('COMMITTED');
      expect(view.items).toEqual([{ sku, quantity: 3, committedQuantity: 2, returnedQuantity: 0 }]);
      expect(calls).toBe(3);
      const sales = await clients.db.query(
        `SELECT delta FROM stock_movements WHERE reservation_id = $1 AND kind = 'sale'`,
        [reservationId],
      );
      expect(sales.rows).toEqual([{ delta: '-2' }]);
    }, flaky);
    expect(await clients.stock.getStock(sku)).toMatchObject({ total: 3, reserved: 0, available: 3 });
    await expectConsistent(clients, sku);
  });

  it('a hold that finds too little stock rejects with INSUFFICIENT_STOCK and holds nothing', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 1);
    await withWorker(async (queue) => {
      const reservationId = uniqueId();
      const handle = await client.workflow.start(reservationWorkflow, {
        workflowId: workflowIdOf(reservationId),
        taskQueue: queue,
        args: [
          {
            reservationId,
            items: [{ sku, quantity: 2 }],
            ttlSeconds: 600,
            maxTtlSeconds: 86_400,
            requestHash: 'h',
            startToken: 't',
          },
        ],
      });
      const code = await refusalCode(
        handle.executeUpdate(awaitHoldUpdate, { args: [{ requestHash: 'h', startToken: 't' }] }),
      );
      expect(code).toBe('INSUFFICIENT_STOCK');
      expect((await handle.result()).status).toBe('REJECTED');
    });
    expect((await clients.stock.getStock(sku)).reserved).toBe(0);
  });

  it('a commit of more than held is refused by the update validator and the hold stays', async () => {
    const sku = uniqueSku();
    await newSku(clients, sku, 5);
    await withWorker(async (queue) => {
      const { handle } = await start(queue, sku, 2);
      expect(await refusalCode(handle.executeUpdate(commitUpdate, { args: [{ items: [{ sku, quantity: 3 }] }] }))).toBe(
        'QUANTITY_EXCEEDS_HOLD',
      );
      expect((await handle.query(getReservationQuery)).status).toBe('HELD');
      await handle.executeUpdate(cancelUpdate, { args: [{}] });
    });
    await expectConsistent(clients, sku);
  });
});
