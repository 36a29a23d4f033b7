/**
 * The reconciler's rule for orphans when Temporal cannot tell (docs/DESIGN.md, "A partial loss":
 * a reservation about which Temporal cannot answer is never touched), against a real Temporal dev
 * server that stops answering: its client goes through a TCP proxy this file freezes (connections
 * stay open, nothing comes back), as a SIGSTOPped or partitioned server behaves. The reconcile
 * activity runs as the worker runs it (MockActivityEnvironment gives it its Context). A database
 * and a redis-server of this file's own: the reconciler reads every SKU and every stale HELD row.
 */
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { createReconcilerActivities, type ReconcilerSettings } from '../../src/reconciler/activities';
import { workflowIdOf } from '../../src/domain/types';
import { createLogger } from '../../src/logger';
import { createStock, keys, type StockClients } from '../../src/stock';
import { uniqueId, uniqueSku } from '../helpers/env';
import { startPrivateStores, type PrivateStores } from '../helpers/private-stores';
import { expiresIn, newSku } from '../helpers/stock';
import { devServerEnv, taskQueue } from '../helpers/temporal';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';

const SETTINGS: ReconcilerSettings = { intervalMs: 100, graceMs: 1_000, rebuildSettleMs: 0 };
const ORPHAN_REASON = 'released by the reconciler: its workflow is gone';

let own: PrivateStores | undefined;
let clients: StockClients;
let env: TestWorkflowEnvironment | undefined;
let proxy: TcpProxy | undefined;
let connection: Connection | undefined;
/** A client of the dev server through the proxy: what the reconciler asks. */
let temporal: Client;

beforeAll(async () => {
  own = await startPrivateStores('stockhold_reconciler_temporal');
  clients = createStock({ redisUrl: own.redisUrl, databaseUrl: own.databaseUrl });
  env = await devServerEnv();
  proxy = await startTcpProxy(env.address);
  connection = await Connection.connect({ address: proxy.address });
  temporal = new Client({ connection, namespace: 'default' });
}, 120_000);

afterAll(async () => {
  proxy?.thaw();
  await connection?.close().catch(() => undefined);
  await proxy?.close();
  await env?.teardown();
  await clients?.close();
  await own?.stop();
}, 60_000);

/** One run of the reconcile activity (a rebuild check and one pass over everything), as a worker runs it. */
async function reconcileOnce(): Promise<void> {
  const activities = createReconcilerActivities({
    stock: clients.stock,
    temporal,
    logger: createLogger('silent'),
    settings: SETTINGS,
  });
  await new MockActivityEnvironment().run(activities.reconcile, { runMs: 1 });
}

async function statusOf(reservationId: string): Promise<{ status: string; reason: string | null }> {
  const rows = await clients.db.query<{ status: string; reason: string | null }>(
    'SELECT status, reason FROM reservations WHERE id = $1',
    [reservationId],
  );
  return rows.rows[0]!;
}

async function orphansCounted(): Promise<number> {
  return (await clients.stock.drift.counts()).find((c) => c.kind === 'orphan')?.count ?? 0;
}

/** A HELD reservation of `quantity` units with no workflow behind it, unchanged for an hour (stale for any grace period). */
async function staleHold(sku: string, quantity: number): Promise<string> {
  const reservationId = uniqueId('stale');
  await clients.stock.hold({ reservationId, items: [{ sku, quantity }], expiresAt: expiresIn() });
  await clients.db.query(`UPDATE reservations SET updated_at = now() - interval '1 hour' WHERE id = $1`, [
    reservationId,
  ]);
  return reservationId;
}

/**
 * The reconcile activity's heartbeat timeout (src/reconciler/workflow.ts): a pass that outlasts
 * it while stuck on Temporal would have Temporal hand the activity to another worker while this
 * one is still inside it (two reconcilers), and holds every other repair meanwhile.
 */
const HEARTBEAT_TIMEOUT_MS = 15_000;

describe('a stale HELD reservation with no workflow, while Temporal does not answer', () => {
  let sku: string;
  let orphan: string;
  let alive: string;

  beforeAll(async () => {
    sku = uniqueSku('SILENT');
    await newSku(clients, sku, 10);
    orphan = await staleHold(sku, 3);
    // Its twin whose workflow runs (on a task queue no worker polls): Temporal's answer keeps it.
    alive = await staleHold(sku, 2);
    await temporal.workflow.start('reservationWorkflow', {
      workflowId: workflowIdOf(alive),
      taskQueue: taskQueue('nobody'),
      args: [],
    });
  }, 30_000);

  test(
    'keeps its hold: the pass ends within the heartbeat timeout and guesses nothing',
    async () => {
      proxy!.freeze();
      await reconcileOnce();
      expect(await statusOf(orphan)).toEqual({ status: 'HELD', reason: null });
      expect(await clients.redis.hgetall(keys.holds(sku))).toEqual({ [orphan]: '3', [alive]: '2' });
      expect(await clients.redis.hget(keys.stock(sku), 'reserved')).toBe('5');
      expect(await orphansCounted()).toBe(0);
    },
    HEARTBEAT_TIMEOUT_MS,
  );

  test('is released once Temporal answers again and says its workflow is gone (and the one whose workflow runs is not)', async () => {
    proxy!.thaw();
    await reconcileOnce();
    expect(await statusOf(orphan)).toEqual({ status: 'CANCELLED', reason: ORPHAN_REASON });
    expect(await statusOf(alive)).toEqual({ status: 'HELD', reason: null });
    expect(await clients.redis.hgetall(keys.holds(sku))).toEqual({ [alive]: '2' });
    expect(await clients.redis.hget(keys.stock(sku), 'reserved')).toBe('2');
    expect(await orphansCounted()).toBe(1);
  }, 30_000);
});
