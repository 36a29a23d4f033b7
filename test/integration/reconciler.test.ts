/**
 * The reconciler's claims (../shared/DESIGN.md, "Healing: Redis may lose anything") against real
 * Redis, PostgreSQL and Temporal: a stack (test/helpers/stack.ts) whose worker also runs the
 * deployment's reconcilerWorkflow, with short settings. Each test breaks Redis as a failover to a
 * lagging replica or an AOF-everysec crash would (a suffix of the writes lost, or a key), waits
 * for the reconciler with bounded polls, then checks the invariants (expectConsistent) and that
 * /metrics counted exactly the repair expected.
 *
 * The stack runs on a PostgreSQL database and a redis-server of this file's own: the reconciler
 * compares every SKU of its database and releases HELD reservations its Temporal does not know,
 * so it must never see another test file's data; and a test here wipes Redis.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { createReconcilerActivities, type ReconcilerSettings } from '../../src/reconciler/activities';
import { workflowIdOf } from '../../src/domain/types';
import { createLogger } from '../../src/logger';
import { createStock, keys, transaction, type StockClients } from '../../src/stock';
import { rebuildIfLost } from '../../src/reconciler/rebuild';
import { ensureReconciler } from '../../src/temporal/deployment';
import { RECONCILER_WORKFLOW_ID } from '../../src/reconciler/workflow';
import { untilAnswered, waitFor } from '../helpers/client';
import { uniqueId, uniqueSku } from '../helpers/env';
import { pollUntil, startStack, type ApiAnswer, type Stack } from '../helpers/stack';
import { expectConsistent, expiresIn, figures } from '../helpers/stock';
import { workflowBundle } from '../helpers/temporal';
import { startPrivateStores, type PrivateStores } from '../helpers/private-stores';

const SETTINGS: ReconcilerSettings = { intervalMs: 300, graceMs: 1_000, rebuildSettleMs: 1_000 };
const GRACE = SETTINGS.graceMs;
/** Bound of every wait for the reconciler: a few scans (one about every second) and a grace period. */
const HEAL_MS = 15_000;
const ORPHAN_REASON = 'released by the reconciler: its workflow is gone';

/** This file's own database and redis-server. */
let own: PrivateStores | undefined;
let stack: Stack;
/** A second worker on the stack's task queue (the last test replaces the stack's worker with it). */
let replacement: { worker: Worker; run: Promise<void> } | undefined;

beforeAll(async () => {
  own = await startPrivateStores('stockhold_reconciler');
  stack = await startStack({ redisUrl: own.redisUrl, databaseUrl: own.databaseUrl, reconciler: SETTINGS });
}, 120_000);

afterAll(async () => {
  if (replacement) {
    if (replacement.worker.getState() === 'RUNNING') replacement.worker.shutdown();
    await replacement.run.catch(() => undefined);
  }
  await stack?.close();
  await own?.stop();
}, 60_000);

// ------------------------------------------------------------------ helpers

const redis = () => stack.stock.redis;
const ledger = () => stack.stock.stock.ledger;
const drift = () => stack.stock.stock.drift;
const allSkus = async () => (await stack.stock.stock.listSkus(undefined, 1_000)).skus;

/** A new SKU through the API (admin) with `total` units. */
async function createSku(total: number, prefix = 'REC'): Promise<string> {
  const sku = uniqueSku(prefix);
  const res = await stack.admin('POST', '/v1/skus', { body: { sku, total, name: `item ${sku}` } });
  expect(res.status).toBe(201);
  return sku;
}

/** A HELD reservation of `quantity` units of `sku` through the API (201). */
async function hold(sku: string, quantity: number): Promise<string> {
  const reservationId = uniqueId('rec');
  const res = await stack.api('POST', '/v1/reservations', { body: { reservationId, items: [{ sku, quantity }] } });
  expect({ status: res.status, reservation: res.body?.status }).toEqual({ status: 201, reservation: 'HELD' });
  return reservationId;
}

async function stockOf(sku: string): Promise<ApiAnswer> {
  return stack.api('GET', `/v1/skus/${sku}`);
}

async function available(sku: string): Promise<number> {
  const res = await stockOf(sku);
  expect(res.status).toBe(200);
  return res.body.available as number;
}

async function statusOf(reservationId: string): Promise<{ status: string; reason: string | null } | undefined> {
  const rows = await stack.stock.db.query<{ status: string; reason: string | null }>(
    'SELECT status, reason FROM reservations WHERE id = $1',
    [reservationId],
  );
  return rows.rows[0];
}

async function cancel(reservationId: string): Promise<void> {
  const res = await stack.api('POST', `/v1/reservations/${reservationId}/cancel`, { body: {} });
  expect({ status: res.status, reservation: res.body?.status }).toEqual({ status: 200, reservation: 'CANCELLED' });
}

/**
 * The reconciler's counters as /metrics shows them: `repairs:<kind>` from
 * stockhold_reconcile_repairs_total, `unexplained:<kind>` from stockhold_reconcile_unexplained_total.
 */
async function counted(): Promise<Record<string, number>> {
  const res = await stack.api('GET', '/metrics', { token: null });
  expect(res.status).toBe(200);
  const counts: Record<string, number> = {};
  for (const line of res.text.split('\n')) {
    const found = /^stockhold_reconcile_(repairs|unexplained)_total\{kind="([^"]+)"\} (\d+)$/.exec(line);
    if (found) counts[`${found[1]}:${found[2]}`] = Number(found[3]);
  }
  return counts;
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const changed: Record<string, number> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[key] ?? 0) - (before[key] ?? 0);
    if (d !== 0) changed[key] = d;
  }
  return changed;
}

/** Completed scans so far (the reconciler counts one after each pass over every SKU). */
async function scans(): Promise<number> {
  return (await drift().counts()).find((c) => c.kind === 'scan')?.count ?? 0;
}

/** Waits until `n` whole scans have run that started after this call (a scan under way now does not count). */
async function fullScans(n: number): Promise<void> {
  const start = await scans();
  const reached = await pollUntil(scans, (c) => c >= start + n + 1, HEAL_MS, 25);
  expect(reached).toBeGreaterThanOrEqual(start + n + 1);
}

/**
 * Waits for the end of the next scan. Called again right after one, it waits for a scan that
 * started after it was called: the reconciler pauses between two scans.
 */
async function nextScan(): Promise<void> {
  const start = await scans();
  const reached = await pollUntil(scans, (c) => c > start, HEAL_MS, 10);
  expect(reached).toBeGreaterThan(start);
}

/**
 * Waits until /metrics shows exactly `expected` more than `before` (the alerts are counted a
 * moment after their repair), then the end of one more scan, and checks that nothing else was counted.
 */
async function expectCounted(before: Record<string, number>, expected: Record<string, number>): Promise<void> {
  await pollUntil(
    async () => delta(before, await counted()),
    (d) => Object.entries(expected).every(([k, v]) => (d[k] ?? 0) >= v),
    HEAL_MS,
  );
  await nextScan();
  expect(delta(before, await counted())).toEqual(expected);
}

async function saleRows(reservationId: string): Promise<number> {
  const rows = await stack.stock.db.query<{ n: string }>(
    `SELECT count(*) AS n FROM stock_movements WHERE reservation_id = $1 AND kind = 'sale'`,
    [reservationId],
  );
  return Number(rows.rows[0]!.n);
}

/** A SKU stocked at two new locations through the API, and a channel over them (contract v3). */
async function spreadSku(a: number, b: number): Promise<{ sku: string; at: [string, string]; channel: string }> {
  const at: [string, string] = [uniqueSku('RWA'), uniqueSku('RWB')];
  for (const id of at)
    expect((await stack.admin('POST', '/v1/locations', { body: { locationId: id, name: id } })).status).toBe(201);
  const channel = uniqueSku('rch');
  expect(
    (await stack.admin('PUT', `/v1/channels/${channel}`, { body: { locations: at, strategy: 'priority' } })).status,
  ).toBe(200);
  const sku = uniqueSku('RSP');
  expect((await stack.admin('POST', '/v1/skus', { body: { sku, locations: { [at[0]]: a, [at[1]]: b } } })).status).toBe(
    201,
  );
  return { sku, at, channel };
}

describe('the reconciler repairs a SKU stocked at several locations, location by location', () => {
  test('a transfer Redis applied after its transaction rolled back is moved back, counted as a repair, not an alert, even with a later movement recorded meanwhile', async () => {
    const { sku, at } = await spreadSku(4, 6);
    const before = await counted();
    const ids = await stack.stock.db.query<{ id: string }>(
      "SELECT nextval('stock_movements_id_seq')::text AS id FROM generate_series(1, 2)",
    );
    await stack.stock.stock.counters.transfer(sku, { out: ids.rows[0]!.id, in: ids.rows[1]!.id }, at[0], at[1], 3);
    expect(await redis().hmget(keys.stock(sku), 'total', `t:${at[0]}`, `t:${at[1]}`)).toEqual(['10', '1', '9']);
    // A movement recorded after it: the checkpoint that follows must not drop what explains the drift.
    expect(
      (await stack.admin('POST', `/v1/skus/${sku}/restock`, { body: { quantity: 1, locationId: at[1] } })).status,
    ).toBe(200);
    const healed = await pollUntil(
      () => redis().hmget(keys.stock(sku), 'total', `t:${at[0]}`, `t:${at[1]}`),
      (v) => v[1] === '4' && v[2] === '7',
      HEAL_MS,
    );
    expect(healed).toEqual(['11', '4', '7']);
    await expectConsistent(stack.stock, sku);
    await fullScans(1);
    await expectCounted(before, { 'repairs:rolled_back_movement': 1 });
  });

  test('a lowering adjustment at a location that Redis applied after its transaction rolled back is undone there too, in the same repair, not an alert', async () => {
    const { sku, at } = await spreadSku(4, 6);
    const before = await counted();
    const id = (await stack.stock.db.query<{ id: string }>("SELECT nextval('stock_movements_id_seq')::text AS id"))
      .rows[0]!.id;
    await stack.stock.stock.counters.adjust(sku, id, -3, at[1]);
    expect(await redis().hmget(keys.stock(sku), 'total', `t:${at[1]}`)).toEqual(['7', '3']);
    const healed = await pollUntil(
      () => redis().hmget(keys.stock(sku), 'total', `t:${at[0]}`, `t:${at[1]}`),
      (v) => v[0] === '10' && v[2] === '6',
      HEAL_MS,
    );
    expect(healed).toEqual(['10', '4', '6']);
    await expectConsistent(stack.stock, sku);
    await fullScans(1);
    await expectCounted(before, { 'repairs:rolled_back_movement': 1 });
  });
  test('a split hold Redis lost is put back at its recorded locations, and only there', async () => {
    const { sku, at, channel } = await spreadSku(2, 5);
    const reservationId = uniqueId('rsplit');
    const held = await stack.api('POST', '/v1/reservations', {
      body: { reservationId, channel, items: [{ sku, quantity: 4 }] },
    });
    expect(held.body.items[0].allocations).toEqual([{ locationId: at[1], quantity: 4, committedQuantity: 0 }]);
    const before = await counted();
    // A failover that lost the hold and its units at b only.
    await redis()
      .multi()
      .hdel(keys.holds(sku), reservationId)
      .hdel(keys.stock(sku), `a:${reservationId}`)
      .hincrby(keys.stock(sku), 'reserved', -4)
      .hincrby(keys.stock(sku), `r:${at[1]}`, -4)
      .exec();
    await pollUntil(
      () => redis().hget(keys.stock(sku), `a:${reservationId}`),
      (a) => a === `${at[1]}=4`,
      HEAL_MS,
    );
    expect(await redis().hmget(keys.stock(sku), `r:${at[0]}`, `r:${at[1]}`)).toEqual(['0', '4']);
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, { 'repairs:lost_hold': 1, 'unexplained:lost_hold': 1 });
  });

  test("a location's reserved or total apart from PostgreSQL's is repaired there, the SKU's sums untouched", async () => {
    const { sku, at, channel } = await spreadSku(3, 3);
    await stack.api('POST', '/v1/reservations', { body: { channel, items: [{ sku, quantity: 2 }] } });
    const before = await counted();
    // Units moved between the two levels in Redis alone (a transfer whose COMMIT failed), and a
    // level's reserved off while the SKU's sum is right.
    await redis()
      .multi()
      .hincrby(keys.stock(sku), `t:${at[0]}`, -2)
      .hincrby(keys.stock(sku), `t:${at[1]}`, 2)
      .hincrby(keys.stock(sku), `r:${at[0]}`, -1)
      .hincrby(keys.stock(sku), `r:${at[1]}`, 1)
      .exec();
    await pollUntil(
      () => redis().hmget(keys.stock(sku), `t:${at[0]}`, `r:${at[0]}`),
      (v) => v[0] === '3' && v[1] === '2',
      HEAL_MS,
    );
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, {
      'repairs:level_reserved': 1,
      'unexplained:level_reserved': 1,
      'repairs:level_total': 1,
      'unexplained:level_total': 1,
    });
  });
});

// ------------------------------------------------------------------ partial losses

describe('the reconciler repairs what Redis lost', () => {
  test('a hold Redis lost is restored, so no one else can take its units, and its commit sells exactly once', async () => {
    const sku = await createSku(10);
    const reservationId = await hold(sku, 4);
    const before = await counted();

    // A failover to a replica that missed the hold: the hold and its units are gone, atomically.
    await redis().multi().hdel(keys.holds(sku), reservationId).hincrby(keys.stock(sku), 'reserved', -4).exec();
    expect(await available(sku)).toBe(10);

    const restored = await pollUntil(
      () => redis().hget(keys.holds(sku), reservationId),
      (q) => q === '4',
      HEAL_MS,
    );
    expect(restored).toBe('4');
    expect(await available(sku)).toBe(6);
    await expectConsistent(stack.stock, sku);
    // Its units are taken again: 7 more cannot be held.
    const greedy = await stack.api('POST', '/v1/reservations', { body: { items: [{ sku, quantity: 7 }] } });
    expect({ status: greedy.status, code: greedy.body?.error?.code }).toEqual({
      status: 409,
      code: 'INSUFFICIENT_STOCK',
    });
    await expectCounted(before, { 'repairs:lost_hold': 1, 'unexplained:lost_hold': 1 });

    const committed = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} });
    expect({ status: committed.status, reservation: committed.body?.status }).toEqual({
      status: 200,
      reservation: 'COMMITTED',
    });
    expect(await saleRows(reservationId)).toBe(1);
    expect(await figures(stack.stock, sku)).toMatchObject({
      redisTotal: 6,
      redisReserved: 0,
      holdCount: 0,
      pgTotal: 6,
      pgHeld: 0,
      ledgerSum: 6,
    });
    await expectConsistent(stack.stock, sku);
  });

  test('a hold whose field Redis lost while reserved kept its units keeps them reserved until the hold is back', async () => {
    const sku = await createSku(10);
    const reservationId = await hold(sku, 4);
    const before = await counted();

    // Only the holds field is lost: reserved still counts the 4 units, which PostgreSQL holds.
    await redis().hdel(keys.holds(sku), reservationId);
    // Never freed in between: the reconciler must not lower reserved to the sum of what is left.
    const seen: number[] = [];
    const restored = await pollUntil(
      async () => {
        seen.push(await available(sku));
        return redis().hget(keys.holds(sku), reservationId);
      },
      (q) => q === '4',
      HEAL_MS,
      50,
    );
    expect(restored).toBe('4');
    expect(new Set(seen)).toEqual(new Set([6]));
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, { 'repairs:lost_hold': 1, 'unexplained:lost_hold': 1 });
  });

  test('a lost hold whose units look free is kept for its buyer: PostgreSQL refuses the next buyer, the reconciler puts the hold back, the first buyer buys', async () => {
    const sku = await createSku(10);
    const reservationId = await hold(sku, 4);
    const before = await counted();
    await redis().multi().hdel(keys.holds(sku), reservationId).hincrby(keys.stock(sku), 'reserved', -4).exec();
    // The lost units look free to Redis, but PostgreSQL has promised them: the hold is refused.
    const other = await stack.api('POST', '/v1/reservations', {
      body: { reservationId: uniqueId('other'), items: [{ sku, quantity: 10 }] },
    });
    expect({
      status: other.status,
      code: other.body?.error?.code,
      available: other.body?.error?.details?.available,
    }).toEqual({
      status: 409,
      code: 'INSUFFICIENT_STOCK',
      available: 6,
    });
    const restored = await pollUntil(
      () => redis().hget(keys.holds(sku), reservationId),
      (q) => q === '4',
      HEAL_MS,
    );
    expect(restored).toBe('4');
    const paid = await stack.api('POST', `/v1/reservations/${reservationId}/commit`, { body: {} });
    expect({ status: paid.status, reservation: paid.body?.status }).toEqual({ status: 200, reservation: 'COMMITTED' });
    const sold = await stack.stock.db.query<{ total: string }>('SELECT total FROM skus WHERE sku = $1', [sku]);
    expect(Number(sold.rows[0]!.total)).toBe(6);
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, { 'repairs:lost_hold': 1, 'unexplained:lost_hold': 1, 'unexplained:refused_hold': 1 });
  });

  test('a phantom hold (an id nobody reserved) is left by the scan that first sees it and released by a later one', async () => {
    // When "later" is (the grace period, on the reconciler's clock) is reconciler-handover.test.ts's
    // business, with a clock of its own: no stopwatch here.
    const sku = await createSku(10);
    const ghost = uniqueId('ghost');
    const before = await counted();

    await nextScan();
    await redis().multi().hset(keys.holds(sku), ghost, 3).hincrby(keys.stock(sku), 'reserved', 3).exec();
    // The next scan sees it (it started after the write) and leaves it: it is younger than the grace period.
    await nextScan();
    expect(await redis().hget(keys.holds(sku), ghost)).toBe('3');
    expect(await available(sku)).toBe(7);

    const left = await pollUntil(
      () => redis().hexists(keys.holds(sku), ghost),
      (n) => n === 0,
      HEAL_MS,
      25,
    );
    expect(left).toBe(0);
    expect(await available(sku)).toBe(10);
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, { 'repairs:phantom_hold': 1, 'unexplained:phantom_hold': 1 });
    // An unknown id is not tombstoned: it can still be reserved.
    expect(await redis().zscore(keys.done(sku), ghost)).toBeNull();
  });

  test('a difference younger than the grace period is left alone (negative control)', async () => {
    const sku = await createSku(10);
    const ghost = uniqueId('ghost');
    const before = await counted();

    await nextScan();
    await redis().multi().hset(keys.holds(sku), ghost, 2).hincrby(keys.stock(sku), 'reserved', 2).exec();
    // One scan sees it (it started after the write)...
    await nextScan();
    // ...and right after it, before the next, the difference goes away by itself (a hold in flight
    // whose release landed): it was still there, and it is never repaired nor counted.
    const [[, removed]] = (await redis()
      .multi()
      .hdel(keys.holds(sku), ghost)
      .hincrby(keys.stock(sku), 'reserved', -2)
      .exec()) as [[unknown, number]];
    expect(removed).toBe(1);
    await fullScans(1);
    expect(await figures(stack.stock, sku)).toMatchObject({ redisTotal: 10, redisReserved: 0, holdCount: 0 });
    await expectConsistent(stack.stock, sku);
    expect(delta(before, await counted())).toEqual({});
  });

  test('a total raised by hand is repaired back to PostgreSQL’s figure, counted as unexplained drift', async () => {
    const sku = await createSku(10);
    const before = await counted();

    await redis().hincrby(keys.stock(sku), 'total', 5);
    expect(await available(sku)).toBe(15);
    const total = await pollUntil(
      () => redis().hget(keys.stock(sku), 'total'),
      (t) => t === '10',
      HEAL_MS,
    );
    expect(total).toBe('10');
    expect(await available(sku)).toBe(10);
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, { 'repairs:total': 1, 'unexplained:total': 1 });
  });

  test('a lowering adjustment Redis applied after its transaction rolled back (Redis answered too late) is undone, counted as a repair, not an alert', async () => {
    const sku = await createSku(10);
    const before = await counted();
    // The adjustment's Redis step, run inside a PostgreSQL transaction that then rolled back: its
    // movement id was taken from the ledger's sequence and never committed (nor handed out again).
    const id = (await stack.stock.db.query<{ id: string }>("SELECT nextval('stock_movements_id_seq')::text AS id"))
      .rows[0]!.id;
    await stack.stock.stock.counters.adjust(sku, id, -3);
    expect(await available(sku)).toBe(7);
    const total = await pollUntil(
      () => redis().hget(keys.stock(sku), 'total'),
      (t) => t === '10',
      HEAL_MS,
    );
    expect(total).toBe('10');
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, { 'repairs:rolled_back_movement': 1 });
  });

  test('skus.reserved in PostgreSQL set wrong by hand is recomputed from the HELD reservations, counted as unexplained drift', async () => {
    const sku = await createSku(10);
    await hold(sku, 3);
    const before = await counted();
    const reserved = async () =>
      Number(
        (await stack.stock.db.query<{ reserved: string }>('SELECT reserved FROM skus WHERE sku = $1', [sku])).rows[0]!
          .reserved,
      );
    expect(await reserved()).toBe(3);

    await stack.stock.db.query('UPDATE skus SET reserved = reserved + 4 WHERE sku = $1', [sku]);
    expect(await pollUntil(reserved, (n) => n === 3, HEAL_MS)).toBe(3);
    await expectCounted(before, { 'repairs:ledger_reserved': 1, 'unexplained:ledger_reserved': 1 });
    await expectConsistent(stack.stock, sku);
  });

  test('a restock whose Redis step never happened is applied once, at the next comparison (idempotent, so no grace is needed)', async () => {
    const sku = await createSku(10);
    const before = await counted();

    // PostgreSQL's half of a restock (as Ledger.move writes it); the process died before Redis.
    await transaction(stack.stock.db, (c) =>
      ledger().movements.move(c, { sku, kind: 'restock', delta: 5, reason: 'Redis step lost' }),
    );
    expect(await available(sku)).toBe(10);

    const total = await pollUntil(
      () => redis().hget(keys.stock(sku), 'total'),
      (t) => t !== '10',
      HEAL_MS,
      25,
    );
    expect(total).toBe('15');
    await expectCounted(before, { 'repairs:pending_movement': 1 });
    expect(await redis().hget(keys.stock(sku), 'total')).toBe('15');
    await expectConsistent(stack.stock, sku);
  });

  test('a restock repeated with its Idempotency-Key after Redis lost its application changes total once', async () => {
    const sku = await createSku(10);
    const markBefore = await redis().hget(keys.stock(sku), 'mark');
    expect(markBefore).not.toBeNull();
    const before = await counted();
    const key = randomUUID();
    const restock = () =>
      stack.admin('POST', `/v1/skus/${sku}/restock`, { body: { quantity: 5 }, headers: { 'Idempotency-Key': key } });

    const first = await restock();
    expect({ status: first.status, total: first.body?.total }).toEqual({ status: 200, total: 15 });
    expect(await redis().hget(keys.stock(sku), 'total')).toBe('15');
    const movement = await stack.stock.db.query<{ id: string }>(
      `SELECT id::text AS id FROM stock_movements WHERE sku = $1 AND kind = 'restock'`,
      [sku],
    );
    expect(movement.rows).toHaveLength(1);
    const movementId = movement.rows[0]!.id;

    // A replica that missed the application: total, mark and the movement's m:<id> as before it.
    await redis()
      .multi()
      .hset(keys.stock(sku), 'total', 10, 'mark', markBefore!)
      .hdel(keys.stock(sku), `m:${movementId}`)
      .exec();
    const again = await restock();
    expect({ status: again.status, body: again.body }).toEqual({ status: 200, body: first.body });
    expect(await redis().hget(keys.stock(sku), 'total')).toBe('15');
    // Whoever applied it again, the repeat or (on a slow machine, first) the reconciler, did so once.
    const atRepeat = delta(before, await counted());
    expect([{}, { 'repairs:pending_movement': 1 }]).toContainEqual(atRepeat);

    // Once the movement is older than the grace period (by PostgreSQL's clock, which stamped it),
    // a whole scan finds it applied: never a second time.
    await waitFor(
      async () =>
        (
          await stack.stock.db.query<{ old: boolean }>(
            `SELECT now() - at > $2 * interval '1 millisecond' AS old FROM stock_movements WHERE id = $1`,
            [movementId, GRACE],
          )
        ).rows[0]!.old,
      Boolean,
      50,
    );
    await fullScans(1);
    expect(await redis().hget(keys.stock(sku), 'total')).toBe('15');
    await expectConsistent(stack.stock, sku);
    expect(delta(before, await counted())).toEqual(atRepeat);
    const rows = await stack.stock.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM stock_movements WHERE sku = $1 AND kind = 'restock'`,
      [sku],
    );
    expect(Number(rows.rows[0]!.n)).toBe(1);
  });

  test('HELD reservations whose workflow is gone are released; one whose workflow runs is never touched', async () => {
    const sku = await createSku(10);
    const gone = await hold(sku, 2);
    const goneAndLate = await hold(sku, 3);
    const alive = await hold(sku, 1);
    const before = await counted();

    for (const id of [gone, goneAndLate])
      await stack.env.client.workflow.getHandle(workflowIdOf(id)).terminate('test: the workflow is gone');
    // The second one's deadline has passed too: it ends EXPIRED rather than CANCELLED.
    await stack.stock.db.query(`UPDATE reservations SET expires_at = now() - interval '1 minute' WHERE id = $1`, [
      goneAndLate,
    ]);

    const released = await pollUntil(
      async () => [await statusOf(gone), await statusOf(goneAndLate)],
      (s) => s.every((r) => r?.status !== 'HELD'),
      HEAL_MS,
    );
    expect(released).toEqual([
      { status: 'CANCELLED', reason: ORPHAN_REASON },
      { status: 'EXPIRED', reason: ORPHAN_REASON },
    ]);
    expect(await redis().hgetall(keys.holds(sku))).toEqual({ [alive]: '1' });
    expect(await available(sku)).toBe(9);
    await expectCounted(before, { 'repairs:orphan': 2, 'unexplained:orphan': 2 });
    await expectConsistent(stack.stock, sku);

    // The one whose workflow runs: still HELD after more scans, its hold in place, its workflow alive.
    await fullScans(2);
    expect((await statusOf(alive))?.status).toBe('HELD');
    expect(await redis().hget(keys.holds(sku), alive)).toBe('1');
    expect((await stack.env.client.workflow.getHandle(workflowIdOf(alive)).describe()).status.name).toBe('RUNNING');
    expect(delta(before, await counted())).toEqual({ 'repairs:orphan': 2, 'unexplained:orphan': 2 });
    await cancel(alive);
    expect(await available(sku)).toBe(10);
    await expectConsistent(stack.stock, sku);
  });

  test('a SKU whose keys Redis lost answers 503 (not 404) meanwhile and is loaded back with its holds', async () => {
    const sku = await createSku(10);
    const reservationId = await hold(sku, 3);
    const before = await counted();

    // The gate: the test holds the SKU's row lock, so the reconciler's snapshot of it (FOR SHARE)
    // waits on the test, and "meanwhile" lasts until the test has read it, however slow the machine.
    const locker = await stack.stock.db.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM skus WHERE sku = $1 FOR UPDATE', [sku]);
      const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await redis().del(keys.stock(sku), keys.holds(sku)); // the stockhold:loaded marker survives
      // The reconciler has seen the loss for its grace period and waits to load the SKU.
      await waitFor(
        async () =>
          (
            await stack.stock.db.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [
              lockerPid,
            ])
          ).rowCount ?? 0,
        (n) => n > 0,
        50,
      );
      const meanwhile = await stockOf(sku);
      const reserve = await stack.api('POST', '/v1/reservations', { body: { items: [{ sku, quantity: 1 }] } });
      expect({ status: meanwhile.status, code: meanwhile.body?.error?.code }).toEqual({
        status: 503,
        code: 'UNAVAILABLE',
      });
      expect({ status: reserve.status, code: reserve.body?.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' });
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
    }

    const loaded = await pollUntil(
      () => stockOf(sku),
      (r) => r.status !== 503,
      HEAL_MS,
    );
    expect({ status: loaded.status, body: loaded.body }).toEqual({
      status: 200,
      body: {
        sku,
        name: `item ${sku}`,
        total: 10,
        reserved: 3,
        available: 7,
        lowStockThreshold: null,
        maxPerCustomer: null,
      },
    });
    expect(await redis().hgetall(keys.holds(sku))).toEqual({ [reservationId]: '3' });
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, { 'repairs:missing_sku': 1, 'unexplained:missing_sku': 1 });

    await cancel(reservationId);
    expect(await available(sku)).toBe(10);
    await expectConsistent(stack.stock, sku);
  });

  test('reserved that parted from the sum of the holds is fixed', async () => {
    const sku = await createSku(10);
    const reservationId = await hold(sku, 2);
    const before = await counted();

    await redis().hset(keys.stock(sku), 'reserved', 7);
    const reserved = await pollUntil(
      () => redis().hget(keys.stock(sku), 'reserved'),
      (r) => r === '2',
      HEAL_MS,
    );
    expect(reserved).toBe('2');
    expect(await available(sku)).toBe(8);
    await expectConsistent(stack.stock, sku);
    await expectCounted(before, { 'repairs:reserved': 1, 'unexplained:reserved': 1 });

    await cancel(reservationId);
    await expectConsistent(stack.stock, sku);
  });
});

// ------------------------------------------------------------------ full loss

describe('a full loss of Redis', () => {
  test('is rebuilt once: holds refused meanwhile, a hold row that lands during the settle included, a release completed', async () => {
    const sku = await createSku(10);
    const cancelled = await hold(sku, 3);
    const kept = await hold(sku, 2);
    // A hold in flight: Redis took it, its PostgreSQL row is not written yet. Its workflow runs
    // (a placeholder on a queue no worker polls), so the reconciler does not take it for an orphan.
    const inFlight = uniqueId('rec');
    const placeholder = await stack.env.client.workflow.start('reservationWorkflow', {
      workflowId: workflowIdOf(inFlight),
      taskQueue: `nobody-${randomUUID()}`,
      args: [],
    });
    try {
      await stack.stock.stock.counters.hold(inFlight, 'run-1', [{ sku, quantity: 4 }]);
      const before = await counted();

      await redis().flushdb();
      // A cancel right after the loss: its release meets NOT_LOADED and must retry, not skip.
      const cancelling = stack.api('POST', `/v1/reservations/${cancelled}/cancel`, { body: {} });
      // The rebuild holds its fence and waits for holds in flight to land.
      const fenced = await pollUntil(
        () => redis().exists('stockhold:rebuild'),
        (n) => n === 1,
        HEAL_MS,
        20,
      );
      expect(fenced).toBe(1);
      const refused = await stack.api('POST', '/v1/reservations', { body: { items: [{ sku, quantity: 1 }] } });
      const read = await stockOf(sku);
      // The hold's row lands now, within the settle time.
      await ledger().holds.recordHold({
        reservationId: inFlight,
        items: [{ sku, quantity: 4 }],
        expiresAt: expiresIn(),
      });
      const stillFenced =
        (await redis().exists('stockhold:rebuild')) === 1 && (await redis().exists(keys.loaded)) === 0;
      expect(stillFenced).toBe(true);
      expect({ status: refused.status, code: refused.body?.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' });
      expect({ status: read.status, code: read.body?.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' });

      // A 503 is repeated, as the contract says, until the cancel's outcome is known.
      const first = await cancelling;
      const cancelAnswer =
        first.status === 503
          ? await untilAnswered(() => stack.api('POST', `/v1/reservations/${cancelled}/cancel`, { body: {} }))
          : first;
      expect({ status: cancelAnswer.status, reservation: cancelAnswer.body?.status }).toEqual({
        status: 200,
        reservation: 'CANCELLED',
      });

      const rebuilt = await pollUntil(
        () => stockOf(sku),
        (r) => r.status === 200,
        HEAL_MS,
      );
      expect(rebuilt.body).toMatchObject({ total: 10, reserved: 6, available: 4 });
      expect(await redis().hgetall(keys.holds(sku))).toEqual({ [kept]: '2', [inFlight]: '4' });
      expect(await redis().exists(keys.loaded)).toBe(1);
      await expectConsistent(stack.stock, sku);
      await expectCounted(before, { 'repairs:rebuild': 1 });
      // Every SKU of the database is back, as PostgreSQL has it.
      for (const other of await allSkus()) await expectConsistent(stack.stock, other);
    } finally {
      await stack.stock.stock.release(inFlight, [sku], 'CANCELLED', 'test cleanup').catch(() => undefined);
      await placeholder.terminate('test cleanup').catch(() => undefined);
    }
    await cancel(kept);
    expect(await available(sku)).toBe(10);
    await expectConsistent(stack.stock, sku);
  });

  test('the rebuild is fenced: two stores rebuilding at once load the counters once', async () => {
    const sku = await createSku(10);
    const reservationId = await hold(sku, 3);
    // Another logical database of this file's redis-server: an empty Redis the stack's reconciler never sees.
    const lost = `${own!.redisUrl}/1`;
    const stores: StockClients[] = [
      createStock({ redisUrl: lost, databaseUrl: own!.databaseUrl }),
      createStock({ redisUrl: lost, databaseUrl: own!.databaseUrl }),
    ];
    try {
      await stores[0]!.redis.flushdb();
      const results = await Promise.all(stores.map((s) => rebuildIfLost(s.stock, { settleMs: 300 })));
      const skuCount = (await allSkus()).length;
      expect(results.filter((r) => r === undefined)).toHaveLength(1);
      expect(results.find((r) => r !== undefined)).toBe(skuCount);
      // Loaded: a later call finds the marker and does nothing.
      expect(await rebuildIfLost(stores[1]!.stock, { settleMs: 300 })).toBeUndefined();
      expect(await stores[0]!.redis.hgetall(keys.holds(sku))).toEqual({ [reservationId]: '3' });
      for (const other of await allSkus()) await expectConsistent(stores[0]!, other);
    } finally {
      await stores[0]!.redis.flushdb().catch(() => undefined);
      await Promise.allSettled(stores.map((s) => s.close()));
    }
    await cancel(reservationId);
  });
});

// ------------------------------------------------------------------ the workflow

describe('the reconciler workflow', () => {
  test('has a fixed id, is started once however often it is ensured, and survives its worker', async () => {
    const { client } = stack.env;
    const handle = client.workflow.getHandle(RECONCILER_WORKFLOW_ID);
    const first = await handle.describe();
    expect({ id: first.workflowId, type: first.type, status: first.status.name, taskQueue: first.taskQueue }).toEqual({
      id: 'stockhold-reconciler',
      type: 'reconcilerWorkflow',
      status: 'RUNNING',
      taskQueue: stack.taskQueue,
    });
    await ensureReconciler(client, stack.taskQueue);
    await ensureReconciler(client, stack.taskQueue);
    const again = await handle.describe();
    expect({ runId: again.runId, status: again.status.name }).toEqual({ runId: first.runId, status: 'RUNNING' });

    // Its worker goes away (the reconcile activity is cancelled); another one on the task queue
    // takes the workflow over, and with it the reconciling.
    stack.worker.shutdown();
    const state = await pollUntil(
      async () => stack.worker.getState(),
      (s) => s === 'STOPPED',
      30_000,
    );
    expect(state).toBe('STOPPED');
    const worker = await Worker.create({
      connection: stack.env.nativeConnection,
      taskQueue: stack.taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...createActivities(stack.stock.stock),
        ...createReconcilerActivities({
          stock: stack.stock.stock,
          temporal: client,
          logger: createLogger('silent'),
          settings: SETTINGS,
        }),
      },
      shutdownGraceTime: '2 seconds',
    });
    replacement = { worker, run: worker.run() };

    const sku = await createSku(10);
    const before = await counted();
    await redis().hincrby(keys.stock(sku), 'total', 3);
    const total = await pollUntil(
      () => redis().hget(keys.stock(sku), 'total'),
      (t) => t === '10',
      45_000,
    );
    expect(total).toBe('10');
    await expectCounted(before, { 'repairs:total': 1, 'unexplained:total': 1 });
    const after = await handle.describe();
    expect({ runId: after.runId, status: after.status.name }).toEqual({ runId: first.runId, status: 'RUNNING' });
  }, 90_000);
});
