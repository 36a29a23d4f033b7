/**
 * A worker process killed with SIGKILL while reservations are held (and while some commits and
 * cancels are in flight), then restarted: every reservation still reaches its expected final
 * status, every sale is recorded exactly once, and the stock figures are exact.
 *
 * "In flight" is made certain, not hoped for: the test holds the row locks of the reservations
 * whose commit or cancel it sends, so each settlement's PostgreSQL transaction waits on the test,
 * and the kill comes only once the test has seen every one of them waiting (pg_blocking_pids).
 *
 * The worker runs as a separate OS process (`node lib/worker.js`, built here when lib/ is older than
 * src/) against a real Temporal dev server, the test Redis database and the test PostgreSQL database.
 */
import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowUpdateStage,
  type Client,
  type WorkflowHandle,
  type WorkflowUpdateHandle,
} from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { keys } from '../../src/stock';
import type { reservationWorkflow } from '../../src/workflows';
import {
  awaitHoldUpdate,
  cancelUpdate,
  commitUpdate,
  paymentFailedSignal,
  paymentSucceededSignal,
  WORKFLOW_TYPE,
  workflowIdOf,
} from '../../src/workflows/definitions';
import type { CartLine, ReservationStatus, ReservationView } from '../../src/domain/types';
import { TEST_DATABASE_URL, TEST_REDIS_URL, uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, figures, newSku, testStock } from '../helpers/stock';
import {
  buildIfStale,
  killWorkers,
  spawnWorker as spawnWorkerProcess,
  waitUntilPolling as waitUntilPollingOf,
  WORKER_JS,
  type WorkerProcess,
} from '../helpers/processes';
import { waitFor } from '../helpers/client';
import { callAborter, devServerEnv, taskQueue } from '../helpers/temporal';

/** Longer than holding them and killing the worker takes on a loaded machine: their deadlines pass after the kill. */
const SHORT_TTL_SECONDS = 10;
const LONG_TTL_SECONDS = 600;

type Handle = WorkflowHandle<typeof reservationWorkflow>;

const clients = testStock();
let env: TestWorkflowEnvironment | undefined;
let client: Client;
/**
 * Every Temporal call of the test runs under this signal; afterAll aborts it before the teardown,
 * so after a failure no call is left retrying on a closed connection (its "Channel has been shut
 * down" would otherwise surface in whichever test file runs next).
 */
const aborter = callAborter();
const call = <T>(fn: () => Promise<T>): Promise<T> => client.withAbortSignal(aborter.signal, fn);

// ---------------------------------------------------------------- build and worker processes

/** A worker process on `queue`, over the test Redis and PostgreSQL databases. */
function spawnWorker(queue: string): WorkerProcess {
  return spawnWorkerProcess({
    TEMPORAL_ADDRESS: env!.address,
    TEMPORAL_TASK_QUEUE: queue,
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: TEST_DATABASE_URL,
  });
}

/** Waits until the worker process polls both the workflow and the activity task queue. */
const waitUntilPolling = (worker: WorkerProcess, queue: string) =>
  waitUntilPollingOf(worker, client, queue, { signal: aborter.signal, timeoutMs: Number.POSITIVE_INFINITY });

async function stopWorker(worker: WorkerProcess, graceMs = 5_000): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  worker.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
  const stopped = await Promise.race([worker.exited.then(() => true), graceOver]);
  clearTimeout(timer); // a pending grace timer would keep jest from exiting
  if (!stopped) {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
}

/**
 * The transactions waiting for the row of a reservation the test has locked (backend `locker`):
 * each waiter of a locked row takes (or queues for) PostgreSQL's tuple lock of that row first, so
 * pg_locks says which reservation each backend waits for.
 */
async function waitingOn(locker: number): Promise<{ pid: number; id: string }[]> {
  const { rows } = await clients.db.query<{ pid: number; id: string }>(
    `SELECT l.pid, r.id FROM pg_locks l JOIN reservations r ON r.ctid = format('(%s,%s)', l.page, l.tuple)::tid
      WHERE l.locktype = 'tuple' AND l.relation = 'reservations'::regclass AND l.pid <> $1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY l.pid`,
    [locker],
  );
  return rows;
}

/** A reservation's workflow history events. */
async function eventsOf(r: { handle: Handle }) {
  return (await call(() => r.handle.fetchHistory())).events ?? [];
}

/** Which of these backends still exist. */
async function backendsLeft(pids: number[]): Promise<number[]> {
  const { rows } = await clients.db.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])',
    [pids],
  );
  return rows.map((r) => r.pid);
}

// ---------------------------------------------------------------- reservations

type Fate =
  | 'commit-in-flight' // commit accepted by the workflow, its transaction waiting on the test's lock at the kill
  | 'cancel-in-flight' // cancel sent (not awaited), its transaction waiting on the test's lock at the kill
  | 'expire-during-crash' // short TTL that runs out while no worker is alive
  | 'signal-commit-during-crash' // paymentSucceeded sent while no worker is alive
  | 'signal-cancel-during-crash' // paymentFailed sent while no worker is alive
  | 'commit-after-restart'
  | 'partial-commit-after-restart'
  | 'cancel-after-restart';

const EXPECTED: Record<Fate, ReservationStatus> = {
  'commit-in-flight': 'COMMITTED',
  'cancel-in-flight': 'CANCELLED',
  'expire-during-crash': 'EXPIRED',
  'signal-commit-during-crash': 'COMMITTED',
  'signal-cancel-during-crash': 'CANCELLED',
  'commit-after-restart': 'COMMITTED',
  'partial-commit-after-restart': 'COMMITTED',
  'cancel-after-restart': 'CANCELLED',
};

interface Reservation {
  fate: Fate;
  reservationId: string;
  items: CartLine[];
  /** What a partial commit sells (the first line's first unit). */
  commitItems?: CartLine[];
  handle: Handle;
  held?: ReservationView;
}

/** Starts a reservation as the API does: update-with-start carrying the awaitHold update. */
async function reserve(queue: string, fate: Fate, items: CartLine[], ttlSeconds: number): Promise<Reservation> {
  const reservationId = uniqueId('crash');
  const startToken = randomUUID();
  const workflowId = workflowIdOf(reservationId);
  const start = new WithStartWorkflowOperation<typeof reservationWorkflow>(WORKFLOW_TYPE, {
    workflowId,
    taskQueue: queue,
    args: [{ reservationId, items, ttlSeconds, maxTtlSeconds: 86_400, requestHash: 'h', startToken }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    memo: { requestHash: 'h' },
  });
  const answer = await call(() =>
    client.workflow.executeUpdateWithStart(awaitHoldUpdate, {
      args: [{ requestHash: 'h', startToken }],
      startWorkflowOperation: start,
    }),
  );
  const commitItems = fate === 'partial-commit-after-restart' ? [{ sku: items[0]!.sku, quantity: 1 }] : undefined;
  return {
    fate,
    reservationId,
    items,
    commitItems,
    handle: client.workflow.getHandle<typeof reservationWorkflow>(workflowId),
    held: answer.reservation,
  };
}

/** The units each line should have sold once the reservation is final. */
function expectedSold(r: Reservation): Map<string, number> {
  const sold = new Map<string, number>();
  if (EXPECTED[r.fate] !== 'COMMITTED') return sold;
  for (const line of r.commitItems ?? r.items) sold.set(line.sku, line.quantity);
  return sold;
}

// ---------------------------------------------------------------- the test

beforeAll(async () => {
  buildIfStale(WORKER_JS);
  env = await devServerEnv();
  client = env.client;
}, 150_000);

afterAll(async () => {
  aborter.abort();
  killWorkers();
  await env?.teardown();
  await clients.close();
});

describe('worker crash (SIGKILL) and restart, dev server, real Redis and PostgreSQL', () => {
  it('every reservation reaches its final state, the settlements in flight at the kill finish after the restart, and the stock figures are exact', async () => {
    const queue = taskQueue('crash');
    const initial = new Map<string, number>([
      [uniqueSku('CRASH-A'), 40],
      [uniqueSku('CRASH-B'), 30],
      [uniqueSku('CRASH-C'), 20],
      // SKUs of the commits and cancels in flight, used by nothing else: a settlement takes its
      // SKUs' row locks before it waits on the reservation's, which this test holds (the outbox's
      // lock order), so a SKU shared with other reservations would stall their writes too, and a
      // SKU shared by two settlements would make the second wait on the first, not on the test.
      [uniqueSku('CRASH-D'), 10],
      [uniqueSku('CRASH-E'), 10],
      [uniqueSku('CRASH-F'), 10],
      [uniqueSku('CRASH-G'), 10],
      [uniqueSku('CRASH-H'), 10],
      [uniqueSku('CRASH-I'), 10],
      [uniqueSku('CRASH-J'), 10],
    ]);
    for (const [sku, total] of initial) await newSku(clients, sku, total);
    const [a, b, c, d, e, f, g, h, i, j] = [...initial.keys()] as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];

    // 20 reservations; some with several lines.
    const plan: [Fate, CartLine[], number][] = [
      ['commit-in-flight', [{ sku: f, quantity: 2 }], LONG_TTL_SECONDS],
      [
        'commit-in-flight',
        [
          { sku: g, quantity: 1 },
          { sku: h, quantity: 1 },
        ],
        LONG_TTL_SECONDS,
      ],
      ['commit-in-flight', [{ sku: i, quantity: 1 }], LONG_TTL_SECONDS],
      ['commit-in-flight', [{ sku: j, quantity: 2 }], LONG_TTL_SECONDS],
      ['cancel-in-flight', [{ sku: d, quantity: 3 }], LONG_TTL_SECONDS],
      ['cancel-in-flight', [{ sku: e, quantity: 2 }], LONG_TTL_SECONDS],
      ['expire-during-crash', [{ sku: a, quantity: 2 }], SHORT_TTL_SECONDS],
      ['expire-during-crash', [{ sku: b, quantity: 3 }], SHORT_TTL_SECONDS],
      [
        'expire-during-crash',
        [
          { sku: a, quantity: 1 },
          { sku: b, quantity: 1 },
          { sku: c, quantity: 1 },
        ],
        SHORT_TTL_SECONDS,
      ],
      ['expire-during-crash', [{ sku: c, quantity: 2 }], SHORT_TTL_SECONDS],
      [
        'signal-commit-during-crash',
        [
          { sku: a, quantity: 2 },
          { sku: b, quantity: 2 },
        ],
        LONG_TTL_SECONDS,
      ],
      ['signal-commit-during-crash', [{ sku: c, quantity: 1 }], LONG_TTL_SECONDS],
      ['signal-cancel-during-crash', [{ sku: b, quantity: 1 }], LONG_TTL_SECONDS],
      ['commit-after-restart', [{ sku: a, quantity: 1 }], LONG_TTL_SECONDS],
      [
        'commit-after-restart',
        [
          { sku: b, quantity: 2 },
          { sku: c, quantity: 2 },
        ],
        LONG_TTL_SECONDS,
      ],
      [
        'partial-commit-after-restart',
        [
          { sku: a, quantity: 3 },
          { sku: c, quantity: 1 },
        ],
        LONG_TTL_SECONDS,
      ],
      ['partial-commit-after-restart', [{ sku: b, quantity: 2 }], LONG_TTL_SECONDS],
      ['cancel-after-restart', [{ sku: a, quantity: 2 }], LONG_TTL_SECONDS],
      [
        'cancel-after-restart',
        [
          { sku: b, quantity: 1 },
          { sku: c, quantity: 1 },
        ],
        LONG_TTL_SECONDS,
      ],
      ['cancel-after-restart', [{ sku: c, quantity: 1 }], LONG_TTL_SECONDS],
    ];
    const by = (...fates: Fate[]) => reservations.filter((r) => fates.includes(r.fate));

    // ---- first worker: hold everything (the short TTLs last, just before the kill, so they run out after it)
    const first = spawnWorker(queue);
    await waitUntilPolling(first, queue);
    const longPlan = plan.filter(([fate]) => fate !== 'expire-during-crash');
    let reservations = await Promise.all(longPlan.map(([fate, items, ttl]) => reserve(queue, fate, items, ttl)));
    for (const r of reservations) expect([r.fate, r.held?.status]).toEqual([r.fate, 'HELD']);
    for (const [sku] of initial) {
      const heldUnits = reservations
        .flatMap((r) => r.items)
        .filter((l) => l.sku === sku)
        .reduce((n, l) => n + l.quantity, 0);
      expect((await clients.stock.getStock(sku)).reserved).toBe(heldUnits);
    }

    // ---- in flight at the kill: commits the workflows have accepted, and cancels. The test holds
    // their reservations' row locks, so each settlement's statement, once it has started on the
    // worker, waits on the test: the kill finds every one of them running, none finished.
    const settling = by('commit-in-flight', 'cancel-in-flight');
    let inFlightCommits: WorkflowUpdateHandle<ReservationView>[] = [];
    let inFlightCancels: Promise<ReservationView>[] = [];
    let cancelsAnswered = 0;
    let waiting: { pid: number; id: string }[] = [];
    const locker = await clients.db.connect();
    let locked = true;
    const unlock = async () => {
      if (!locked) return;
      locked = false;
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
    };
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT id FROM reservations WHERE id = ANY($1) FOR UPDATE', [
        settling.map((r) => r.reservationId),
      ]);
      const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

      inFlightCommits = await Promise.all(
        by('commit-in-flight').map((r) =>
          call(() =>
            r.handle.startUpdate(commitUpdate, {
              args: [{ paymentId: `pay-${r.reservationId}` }],
              waitForStage: WorkflowUpdateStage.ACCEPTED,
            }),
          ),
        ),
      );
      inFlightCancels = by('cancel-in-flight').map((r) =>
        call(() => r.handle.executeUpdate(cancelUpdate, { args: [{ reason: 'in flight at the crash' }] })).then(
          (view) => {
            cancelsAnswered += 1;
            return view;
          },
        ),
      );
      for (const p of inFlightCancels) p.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
      // The gate: every commit's and every cancel's transaction has started on the worker and waits
      // for its reservation's row, which the test holds.
      const ids = (w: { id: string }[]) => [...new Set(w.map((x) => x.id))].sort();
      const everyOne = settling.map((r) => r.reservationId).sort();
      waiting = await waitFor(
        () => waitingOn(lockerPid),
        (w) => ids(w).length === everyOne.length,
        50,
      );
      expect(ids(waiting)).toEqual(everyOne);

      // The short TTLs start now: they run out after the kill, while no worker is alive.
      const short = await Promise.all(
        plan
          .filter(([fate]) => fate === 'expire-during-crash')
          .map(([fate, items, ttl]) => reserve(queue, fate, items, ttl)),
      );
      for (const r of short) expect([r.fate, r.held?.status]).toEqual([r.fate, 'HELD']);
      reservations = [...reservations, ...short];

      // ---- SIGKILL: no graceful shutdown, the sticky caches and every running settlement die with it
      waiting = await waitingOn(lockerPid);
      expect(ids(waiting)).toEqual(everyOne); // each still waiting on the test: in flight right now
      first.child.kill('SIGKILL');
      await first.exited;
      expect(first.child.signalCode).toBe('SIGKILL');
    } finally {
      await unlock();
    }
    // The killed worker's settlements, let go: each is one PostgreSQL statement (the hold, release
    // and sale functions), so the server may finish it on its own once the lock is free, or drop
    // it. Either way the worker died before the settlement's Redis half and before Temporal heard
    // of it: Redis still holds every unit, and no cancel was answered. The retries after the
    // restart find whatever PostgreSQL recorded and finish the rest.
    await waitFor(
      () => backendsLeft(waiting.map((w) => w.pid)),
      (left) => left.length === 0,
    );
    const interrupted = new Map(
      (
        await clients.db.query<{ id: string; status: string }>(
          'SELECT id, status FROM reservations WHERE id = ANY($1)',
          [settling.map((r) => r.reservationId)],
        )
      ).rows.map((row) => [row.id, row.status]),
    );
    for (const r of settling) {
      expect([r.reservationId, interrupted.get(r.reservationId)]).toEqual([
        r.reservationId,
        expect.stringMatching(r.fate === 'commit-in-flight' ? /^(HELD|COMMITTED)$/ : /^(HELD|CANCELLED)$/),
      ]);
      for (const line of r.items)
        expect([r.reservationId, line.sku, await clients.redis.hexists(keys.holds(line.sku), r.reservationId)]).toEqual(
          [r.reservationId, line.sku, 1],
        );
    }
    expect(cancelsAnswered).toBe(0);

    // ---- while no worker is alive: payment signals arrive, the short TTLs run out
    for (const r of by('signal-commit-during-crash'))
      await call(() => r.handle.signal(paymentSucceededSignal, { paymentId: `pay-${r.reservationId}` }));
    for (const r of by('signal-cancel-during-crash'))
      await call(() => r.handle.signal(paymentFailedSignal, { reason: 'card declined' }));
    // Each short deadline's timer fires on the server (an event in its history), with no worker to
    // act on it: no release is scheduled, and the hold outlives its deadline until a restarted
    // worker replays the run and handles the fired timer.
    for (const r of by('expire-during-crash')) {
      const history = await waitFor(
        () => eventsOf(r),
        (events) => events.some((e) => e.timerFiredEventAttributes),
        250,
      );
      expect([
        r.reservationId,
        history
          .filter((e) => e.activityTaskScheduledEventAttributes)
          .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name),
      ]).toEqual([r.reservationId, []]);
      expect([r.reservationId, await clients.redis.hexists(keys.holds(r.items[0]!.sku), r.reservationId)]).toEqual([
        r.reservationId,
        1,
      ]);
    }

    // ---- second worker: everything finishes
    const second = spawnWorker(queue);
    await waitUntilPolling(second, queue);
    const afterRestart = [
      ...by('commit-after-restart', 'partial-commit-after-restart').map((r) =>
        call(() =>
          r.handle.executeUpdate(commitUpdate, {
            args: [{ paymentId: `pay-${r.reservationId}`, ...(r.commitItems ? { items: r.commitItems } : {}) }],
          }),
        ),
      ),
      ...by('cancel-after-restart').map((r) =>
        call(() => r.handle.executeUpdate(cancelUpdate, { args: [{ reason: 'changed mind' }] })),
      ),
    ];
    const answers = await Promise.all([
      ...afterRestart,
      ...inFlightCommits.map((u) => call(() => u.result())),
      ...inFlightCancels,
    ]);
    const finals = await Promise.all(reservations.map((r) => call(() => r.handle.result())));

    // ---- the cancels in flight at the kill: their releaseStock started on the killed worker and
    // completed on the new one, as its second (or later) attempt, after its start-to-close timeout
    for (const r of by('cancel-in-flight')) {
      const { events } = await call(() => r.handle.fetchHistory());
      const scheduled = (events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'releaseStock',
      );
      expect([r.reservationId, scheduled]).toEqual([r.reservationId, [expect.anything()]]);
      const id = String(scheduled[0]!.eventId);
      const started = (events ?? []).find(
        (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === id,
      );
      const completed = (events ?? []).find(
        (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === id,
      );
      expect([
        r.reservationId,
        (started?.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2,
        completed !== undefined,
      ]).toEqual([r.reservationId, true, true]);
    }

    // ---- each update answered its final view
    for (const view of answers) expect(['COMMITTED', 'CANCELLED']).toContain(view.status);
    for (const [i, r] of [
      ...by('commit-after-restart', 'partial-commit-after-restart'),
      ...by('cancel-after-restart'),
      ...by('commit-in-flight'),
      ...by('cancel-in-flight'),
    ].entries()) {
      expect([r.fate, answers[i]!.reservationId, answers[i]!.status]).toEqual([
        r.fate,
        r.reservationId,
        EXPECTED[r.fate],
      ]);
    }

    // ---- every reservation: its expected final status, in Temporal and in PostgreSQL; sales exactly once
    const rows = await clients.db.query<{ id: string; status: string }>(
      'SELECT id, status FROM reservations WHERE id = ANY($1)',
      [reservations.map((r) => r.reservationId)],
    );
    const pgStatus = new Map(rows.rows.map((row) => [row.id, row.status]));
    const sales = await clients.db.query<{ reservation_id: string; sku: string; delta: string }>(
      `SELECT reservation_id, sku, delta FROM stock_movements WHERE kind = 'sale' AND reservation_id = ANY($1)`,
      [reservations.map((r) => r.reservationId)],
    );
    const soldBySku = new Map<string, number>();
    reservations.forEach((r, i) => {
      const final = finals[i]!;
      expect([r.fate, final.reservationId, final.status]).toEqual([r.fate, r.reservationId, EXPECTED[r.fate]]);
      expect([r.fate, pgStatus.get(r.reservationId)]).toEqual([r.fate, EXPECTED[r.fate]]);
      const sold = expectedSold(r);
      expect(final.items.map((l) => [l.sku, l.committedQuantity]).sort()).toEqual(
        r.items.map((l) => [l.sku, sold.get(l.sku) ?? 0]).sort(),
      );
      const ledger = sales.rows
        .filter((s) => s.reservation_id === r.reservationId)
        .map((s) => [s.sku, -Number(s.delta)]);
      expect([r.fate, ledger.sort()]).toEqual([r.fate, [...sold.entries()].sort()]);
      for (const [sku, n] of sold) soldBySku.set(sku, (soldBySku.get(sku) ?? 0) + n);
    });

    // ---- stock: total = initial - sold, nothing reserved, no hold left, Redis agrees with PostgreSQL
    for (const [sku, total] of initial) {
      expect(await clients.stock.getStock(sku)).toMatchObject({
        sku,
        total: total - (soldBySku.get(sku) ?? 0),
        reserved: 0,
      });
      expect((await figures(clients, sku)).holdCount).toBe(0);
      await expectConsistent(clients, sku);
    }
    expect([...soldBySku.values()].reduce((n, v) => n + v, 0)).toBeGreaterThan(0);

    await stopWorker(second);
    // A loaded machine's time: the deadlines this test needs are Temporal's and its own gates, not a stopwatch.
  }, 300_000);
});
