/**
 * Records the event histories of real reservation runs into test/replay/histories/<scenario>.json,
 * which test/replay/replay.test.ts replays against the current workflow code to catch
 * non-deterministic changes before they reach running workflows.
 *
 *   npm run record-histories [-- scenario…]   (builds, then runs node build/scripts/record-histories.js)
 *
 * It starts its own Temporal dev server (the CLI installed by `npm run setup`, with the contract's
 * search attributes) and a worker with the real activities over Redis and PostgreSQL:
 * REDIS_URL (default redis://127.0.0.1:6379/11) and DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/stockhold_replay), migrated first. Every run creates SKUs with
 * names of their own, so it may be repeated. Re-record after an intended, patched change to the
 * workflow only when the old histories no longer matter (keep the old files otherwise: they are the
 * runs still in flight in production).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, WithStartWorkflowOperation, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import type { CartLine, ReservationStatus, ReservationView } from '../src/domain';
import { PROJECT_ROOT, TEMPORAL_CLI } from '../src/paths';
import { createStock, migrate, type StockClients } from '../src/stock';
import { rebuildIfLost } from '../src/reconciler/rebuild';
import type { reservationWorkflow } from '../src/workflows';
import {
  awaitHoldUpdate,
  cancelUpdate,
  commitUpdate,
  extendUpdate,
  paymentFailedSignal,
  paymentSucceededSignal,
  SEARCH_ATTRIBUTE_KEYS,
  searchAttributes,
  WORKFLOW_TYPE,
  workflowIdOf,
} from '../src/workflows/definitions';
import { historyToJson } from '../test/replay/histories';

export const HISTORIES_DIR = path.join(PROJECT_ROOT, 'test', 'replay', 'histories');

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379/11';
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/stockhold_replay';
const MAX_TTL_SECONDS = 86_400;

type Handle = WorkflowHandle<typeof reservationWorkflow>;

interface Context {
  client: Client;
  taskQueue: string;
  stock: StockClients;
  /** A fresh SKU with `total` units; its name carries the run's tag so reruns never collide. */
  sku(label: string, total: number): Promise<string>;
  /** A fresh SKU stocked at two fresh locations (these units at each), and a `priority` channel over them. */
  spread(label: string, units: [number, number]): Promise<{ sku: string; channel: string; at: [string, string] }>;
}

interface Started {
  handle: Handle;
  reservationId: string;
  /** The hold answer, or the refusal code when the hold was refused. */
  held?: ReservationView;
  refusal?: string;
}

// ---------------------------------------------------------------- scenarios

const hashOf = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('hex');

/** Starts a reservation as the API does: update-with-start carrying the awaitHold update. */
async function reserve(
  ctx: Context,
  scenario: string,
  items: CartLine[],
  ttlSeconds = 600,
  customerId?: string,
  channel?: string,
): Promise<Started> {
  const reservationId = `replay-${scenario}-${randomUUID().slice(0, 8)}`;
  const requestHash = hashOf({ items, ttlSeconds, customerId: customerId ?? null, ...(channel ? { channel } : {}) });
  const startToken = randomUUID();
  const workflowId = workflowIdOf(reservationId);
  const start = new WithStartWorkflowOperation<typeof reservationWorkflow>(WORKFLOW_TYPE, {
    workflowId,
    taskQueue: ctx.taskQueue,
    args: [
      {
        reservationId,
        items,
        ttlSeconds,
        maxTtlSeconds: MAX_TTL_SECONDS,
        customerId,
        requestHash,
        startToken,
        ...(channel ? { channel } : {}),
      },
    ],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    memo: { requestHash },
    typedSearchAttributes: [
      { key: searchAttributes.status, value: 'PENDING' },
      { key: searchAttributes.skus, value: items.map((i) => i.sku) },
      ...(customerId ? [{ key: searchAttributes.customerId, value: customerId }] : []),
      ...(channel ? [{ key: searchAttributes.salesChannel, value: channel }] : []),
    ],
  });
  const handle = ctx.client.workflow.getHandle<typeof reservationWorkflow>(workflowId);
  try {
    const answer = await ctx.client.workflow.executeUpdateWithStart(awaitHoldUpdate, {
      args: [{ requestHash, startToken }],
      startWorkflowOperation: start,
    });
    return { handle, reservationId, held: answer.reservation };
  } catch (err) {
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type) return { handle, reservationId, refusal: cause.type };
    throw err;
  }
}

function expectThat(condition: boolean, what: string): void {
  if (!condition) throw new Error(`scenario went wrong: ${what}`);
}

async function finalView(started: Started, status: ReservationStatus): Promise<ReservationView> {
  const view = await started.handle.result();
  expectThat(view.status === status, `${started.reservationId} ended ${view.status}, expected ${status}`);
  return view;
}

/** Each scenario drives one reservation to its end and returns its handle; the history is fetched after. */
const SCENARIOS: Record<string, (ctx: Context) => Promise<Handle>> = {
  'hold-commit': async (ctx) => {
    const sku = await ctx.sku('commit', 10);
    const r = await reserve(ctx, 'hold-commit', [{ sku, quantity: 2 }], 600, 'customer-1');
    expectThat(r.held?.status === 'HELD', 'hold');
    const view = await r.handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'pay-commit-1' }] });
    expectThat(view.status === 'COMMITTED' && view.items[0]?.committedQuantity === 2, 'commit');
    await finalView(r, 'COMMITTED');
    return r.handle;
  },

  'hold-cancel': async (ctx) => {
    const sku = await ctx.sku('cancel', 10);
    const r = await reserve(ctx, 'hold-cancel', [{ sku, quantity: 3 }]);
    expectThat(r.held?.status === 'HELD', 'hold');
    const view = await r.handle.executeUpdate(cancelUpdate, { args: [{ reason: 'changed mind' }] });
    expectThat(view.status === 'CANCELLED', 'cancel');
    await finalView(r, 'CANCELLED');
    return r.handle;
  },

  'hold-expire': async (ctx) => {
    const sku = await ctx.sku('expire', 10);
    const r = await reserve(ctx, 'hold-expire', [{ sku, quantity: 1 }], 2);
    expectThat(r.held?.status === 'HELD', 'hold');
    await finalView(r, 'EXPIRED'); // the 2-second timer fires and releases the hold
    return r.handle;
  },

  rejected: async (ctx) => {
    const sku = await ctx.sku('rejected', 1);
    const r = await reserve(ctx, 'rejected', [{ sku, quantity: 2 }]);
    expectThat(r.refusal === 'INSUFFICIENT_STOCK', `refusal ${String(r.refusal)}`);
    await finalView(r, 'REJECTED');
    return r.handle;
  },

  'extend-commit': async (ctx) => {
    const sku = await ctx.sku('extend', 10);
    const r = await reserve(ctx, 'extend-commit', [{ sku, quantity: 1 }], 60);
    expectThat(r.held?.status === 'HELD', 'hold');
    const extended = await r.handle.executeUpdate(extendUpdate, { args: [{ ttlSeconds: 1_200 }] });
    expectThat(extended.status === 'HELD' && extended.expiresAt > r.held!.expiresAt, 'extend');
    await r.handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'pay-extend-1' }] });
    await finalView(r, 'COMMITTED');
    return r.handle;
  },

  'partial-commit': async (ctx) => {
    const a = await ctx.sku('partial-a', 10);
    const b = await ctx.sku('partial-b', 10);
    const r = await reserve(ctx, 'partial-commit', [
      { sku: a, quantity: 3 },
      { sku: b, quantity: 2 },
    ]);
    expectThat(r.held?.status === 'HELD', 'hold');
    const view = await r.handle.executeUpdate(commitUpdate, {
      args: [{ paymentId: 'pay-partial-1', items: [{ sku: a, quantity: 1 }] }],
    });
    const committed = Object.fromEntries(view.items.map((l) => [l.sku, l.committedQuantity]));
    expectThat(
      view.status === 'COMMITTED' && committed[a] === 1 && committed[b] === 0,
      `partial commit ${JSON.stringify(view.items)}`,
    );
    await finalView(r, 'COMMITTED');
    return r.handle;
  },

  'payment-signal-commit': async (ctx) => {
    const sku = await ctx.sku('payment-ok', 10);
    const r = await reserve(ctx, 'payment-signal-commit', [{ sku, quantity: 2 }]);
    expectThat(r.held?.status === 'HELD', 'hold');
    await r.handle.signal(paymentSucceededSignal, { paymentId: 'pay-signal-1' });
    const view = await finalView(r, 'COMMITTED');
    expectThat(view.items[0]?.committedQuantity === 2, 'signal commit');
    return r.handle;
  },

  // Contract v3: a line split over two locations through a channel, then a partial commit that
  // sells the first allocation whole and part of the second.
  'split-line-commit': async (ctx) => {
    const { sku, channel, at } = await ctx.spread('split', [2, 3]);
    const r = await reserve(ctx, 'split-line-commit', [{ sku, quantity: 4 }], 600, undefined, channel);
    expectThat(
      r.held?.status === 'HELD' &&
        JSON.stringify(r.held.items[0]?.allocations?.map((a) => [a.locationId, a.quantity])) ===
          JSON.stringify([
            [at[0], 2],
            [at[1], 2],
          ]),
      `split hold ${JSON.stringify(r.held?.items)}`,
    );
    const view = await r.handle.executeUpdate(commitUpdate, {
      args: [{ paymentId: 'pay-split-1', items: [{ sku, quantity: 3 }] }],
    });
    expectThat(
      view.status === 'COMMITTED' &&
        JSON.stringify(view.items[0]?.allocations?.map((a) => a.committedQuantity)) === '[2,1]',
      `split commit ${JSON.stringify(view.items)}`,
    );
    await finalView(r, 'COMMITTED');
    return r.handle;
  },

  // Contract v3: a line pinned to one location of a two-location SKU, committed whole there.
  'pinned-line-commit': async (ctx) => {
    const { sku, channel, at } = await ctx.spread('pinned', [5, 5]);
    const r = await reserve(
      ctx,
      'pinned-line-commit',
      [{ sku, quantity: 2, locationId: at[1] }],
      600,
      'customer-2',
      channel,
    );
    expectThat(r.held?.items[0]?.allocations?.[0]?.locationId === at[1], `pinned hold ${JSON.stringify(r.held)}`);
    await r.handle.executeUpdate(commitUpdate, { args: [{ paymentId: 'pay-pinned-1' }] });
    await finalView(r, 'COMMITTED');
    return r.handle;
  },

  'payment-failed-cancel': async (ctx) => {
    const sku = await ctx.sku('payment-failed', 10);
    const r = await reserve(ctx, 'payment-failed-cancel', [{ sku, quantity: 1 }]);
    expectThat(r.held?.status === 'HELD', 'hold');
    await r.handle.signal(paymentFailedSignal, { paymentId: 'pay-signal-2', reason: 'card declined' });
    await finalView(r, 'CANCELLED');
    return r.handle;
  },
};

export async function recordHistories(only: string[] = []): Promise<string[]> {
  const unknown = only.filter((name) => !(name in SCENARIOS));
  if (unknown.length > 0)
    throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const chosen = Object.entries(SCENARIOS).filter(([name]) => only.length === 0 || only.includes(name));

  await migrate(DATABASE_URL);
  const stock = createStock({ redisUrl: REDIS_URL, databaseUrl: DATABASE_URL });
  let env: TestWorkflowEnvironment | undefined;
  const written: string[] = [];
  try {
    await rebuildIfLost(stock.stock, { settleMs: 0 }); // a Redis without the loaded marker would refuse holds as UNAVAILABLE
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: TEMPORAL_CLI },
        searchAttributes: SEARCH_ATTRIBUTE_KEYS,
        ip: '127.0.0.1',
      },
    });
    // Fixed identities, so the committed histories carry no host names or process ids.
    const client = new Client({
      connection: env.connection,
      namespace: 'default',
      identity: 'record-histories-client',
    });
    const taskQueue = `record-histories-${randomUUID()}`;
    const tag = randomUUID().slice(0, 8);
    const ctx: Context = {
      client,
      taskQueue,
      stock,
      async sku(label, total) {
        const sku = `REPLAY-${label}-${tag}`;
        await stock.stock.createSku({ sku, total, name: `replay ${label}` });
        return sku;
      },
      async spread(label, units) {
        const at: [string, string] = [`REPLAY-WH1-${label}-${tag}`, `REPLAY-WH2-${label}-${tag}`];
        for (const locationId of at) await stock.stock.createLocation({ locationId, name: locationId });
        const channel = `replay-${label}-${tag}`;
        await stock.stock.putChannel({ channel, locations: at, strategy: 'priority' });
        const sku = `REPLAY-${label}-${tag}`;
        await stock.stock.createSku({
          sku,
          locations: { [at[0]]: units[0], [at[1]]: units[1] },
          name: `replay ${label}`,
        });
        return { sku, channel, at };
      },
    };
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue,
      identity: 'record-histories-worker',
      workflowsPath: require.resolve('../src/workflows'),
      activities: createActivities(stock.stock),
    });
    mkdirSync(HISTORIES_DIR, { recursive: true });
    await worker.runUntil(async () => {
      for (const [name, drive] of chosen) {
        const handle = await drive(ctx);
        const history = await handle.fetchHistory();
        const file = path.join(HISTORIES_DIR, `${name}.json`);
        writeFileSync(file, historyToJson(history));
        written.push(file);
        console.log(
          `wrote ${path.relative(PROJECT_ROOT, file)} (${history.events?.length ?? 0} events, workflow ${handle.workflowId})`,
        );
      }
    });
  } finally {
    await env?.teardown();
    await stock.close();
  }
  return written;
}

if (require.main === module) {
  Runtime.install({ logger: new DefaultLogger('ERROR') }); // a refused hold logs a WARN with a stack: expected here
  recordHistories(process.argv.slice(2)).then(
    (files) => console.log(`recorded ${files.length} histories into ${path.relative(PROJECT_ROOT, HISTORIES_DIR)}`),
    (err: unknown) => {
      console.error('recording failed:', err);
      process.exit(1);
    },
  );
}
