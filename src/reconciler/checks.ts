/**
 * The reconciler's comparisons of a SKU, Redis against PostgreSQL: its settings and per-customer
 * counts, its total movement by movement, and its holds. The reconciler (./reconciler.ts) calls
 * them on every scan with what it read of both stores, and repairs through them.
 */
import type { StockStore } from '../stock';
import type { ReservationStatus, SkuRow } from '../domain/types';
import type { LedgerMovement } from '../stock/ledger';
import { parseAllocation } from '../stock/redis/keys';
import type { HeldLine, ReconcilerStore } from './store';

export type RepairKind =
  | 'lost_hold'
  | 'phantom_hold'
  | 'orphan'
  | 'pending_movement'
  | 'total'
  | 'reserved'
  | 'missing_sku'
  | 'settings'
  | 'customer_held'
  | 'customer_bought'
  | 'ledger_reserved'
  | 'rolled_back_movement'
  | 'channels'
  | 'bundles'
  | 'level_reserved'
  | 'level_total';
export type AlertKind = 'negative_available' | 'hold_mismatch' | 'unrestorable_hold';

export interface ReconcilerEvent {
  kind: RepairKind | AlertKind;
  /** True for drift the reconciler cannot explain: an alert (error log and metric), repaired or not. */
  alert: boolean;
  /** False for an alert that repairs nothing (it is counted once per incident, not per scan). */
  repaired: boolean;
  sku?: string;
  reservationId?: string;
  detail: Record<string, unknown>;
}

/** What a check needs of the reconciler: the stores, its grace-period bookkeeping and its reporting. */
export interface CheckContext {
  store: StockStore;
  graceMs: number;
  now(): number;
  /** True once `what` has been seen at `key` for longer than the grace period (and records it). */
  settled(key: string, what: string): boolean;
  /** Logs and counts a repair (and an alert when `alert`). */
  record(event: Omit<ReconcilerEvent, 'repaired'>): Promise<void>;
  /** Logs and counts an alert that repairs nothing, once per incident (while `key` stays seen). */
  alert(key: string, event: Omit<ReconcilerEvent, 'repaired' | 'alert'>): Promise<void>;
  /** The ledger as the reconciler reads it. */
  scanned: ReconcilerStore;
}

const FINAL: readonly ReservationStatus[] = ['COMMITTED', 'CANCELLED', 'EXPIRED'];

/**
 * A SKU's settings and per-customer counts, as Redis showed them, against PostgreSQL: the
 * settings with the row; each customer's held units (h:) and each hold's customer (o:) with the
 * live holds (PostgreSQL naming the customer of a hold whose o: was lost); on a limited SKU, what
 * each customer bought (b:) with the ledger, less the movements Redis had not applied yet. Each
 * difference is repaired once it has lasted the grace period: the held counts by
 * fix-customers.lua (from the holds, in one step), the settings and bought counts by loading
 * them again under the SKU's row lock (StockStore.applySettings).
 */
export async function checkCustomers(
  ctx: CheckContext,

  sku: string,
  redis: { stock: Record<string, string>; holds: Record<string, string>; customers: Record<string, string> },
  row: SkuRow,
  after: LedgerMovement[],
  held: HeldLine[],
  bought: Map<string, number> | undefined,
): Promise<number> {
  const { stock, holds, customers } = redis;
  let repairs = 0;
  const setting = (value: number | null) => (value === null ? '' : String(value));
  const settings = [row.name, setting(row.lowStockThreshold), setting(row.maxPerCustomer)].join('|');
  const inRedis = [stock.name ?? '', stock.lowStockThreshold ?? '', stock.maxPerCustomer ?? ''].join('|');
  if (settings !== inRedis && ctx.settled(`settings:${sku}`, `${inRedis}>${settings}`)) {
    await ctx.store.applySettings(sku);
    await ctx.record({ kind: 'settings', alert: true, sku, detail: { redis: inRedis, postgres: settings } });
    return 1; // the bought counts were loaded again with them
  }

  // Held units: what the holds add up to per customer, against the h: and o: fields.
  const customerOf = new Map(held.filter((h) => h.customerId).map((h) => [h.reservationId, h.customerId!]));
  const want = new Map<string, string>();
  for (const [id, quantity] of Object.entries(holds)) {
    const customer = customers[`o:${id}`] ?? customerOf.get(id);
    if (!customer) continue;
    want.set(`o:${id}`, customer);
    want.set(`h:${customer}`, String(Number(want.get(`h:${customer}`) ?? 0) + Number(quantity)));
  }
  const have = Object.entries(customers).filter(([field]) => field.startsWith('h:') || field.startsWith('o:'));
  const wrong = have.filter(([field, value]) => want.get(field) !== value).map(([field]) => field);
  wrong.push(...[...want.keys()].filter((field) => customers[field] === undefined));
  if (wrong.length > 0 && ctx.settled(`customer_held:${sku}`, wrong.sort().join(','))) {
    const changed = await ctx.store.counters.fixCustomers(sku, [...customerOf]);
    if (changed > 0) {
      repairs += 1;
      await ctx.record({ kind: 'customer_held', alert: true, sku, detail: { fields: changed } });
    }
  }

  // Bought units, on a SKU limited in both stores: the ledger's figures less the sales and
  // returns after `bmark` that Redis had not applied when it was read.
  if (row.maxPerCustomer === null || stock.maxPerCustomer === undefined) return repairs;
  const expected = new Map(bought ?? []);
  const bmark = BigInt(stock.bmark ?? '0');
  for (const m of after) {
    const pending = stock.mark !== undefined && stock[`m:${m.id}`] === undefined;
    if (!pending || !m.customerId || BigInt(m.id) <= bmark || (m.kind !== 'sale' && m.kind !== 'return')) continue;
    expected.set(m.customerId, (expected.get(m.customerId) ?? 0) + m.delta);
  }
  const off: string[] = [];
  for (const [customer, units] of expected)
    if (units !== 0 && customers[`b:${customer}`] !== String(units)) off.push(customer);
  for (const field of Object.keys(customers))
    if (field.startsWith('b:') && !expected.get(field.slice(2))) off.push(field.slice(2));
  if (
    off.length > 0 &&
    ctx.settled(
      `customer_bought:${sku}`,
      off
        .sort()
        .map((c) => `${c}=${customers[`b:${c}`] ?? 0}`)
        .join(','),
    )
  ) {
    await ctx.store.applySettings(sku);
    repairs += 1;
    await ctx.record({ kind: 'customer_bought', alert: true, sku, detail: { customers: off.length } });
  }
  return repairs;
}

/**
 * Redis's total against PostgreSQL's, movement by movement. Movements Redis has not applied
 * are completed once older than the grace period (a crash between the two writes); a
 * difference no movement explains is drift: repaired (compare-and-set) once it persists.
 */
export async function checkTotal(
  ctx: CheckContext,
  sku: string,
  stock: Record<string, string>,
  pgTotal: number,
  after: LedgerMovement[],
  pgLevels?: ReadonlyMap<string, number>,
): Promise<number> {
  const observed = Number(stock.total);
  // Counters loaded before marks existed: take every movement as applied; the comparison with
  // PostgreSQL's total then sets a mark (a checkpoint) or repairs.
  const pending = stock.mark === undefined ? [] : after.filter((m) => stock[`m:${m.id}`] === undefined);
  const expected = pgTotal - pending.reduce((sum, m) => sum + m.delta, 0);
  const drift = observed - expected;
  if (drift !== 0) {
    if (!ctx.settled(`total:${sku}`, String(drift))) return 0;
    const mark = pending.length > 0 ? String(BigInt(pending[0]!.id) - 1n) : (after.at(-1)?.id ?? stock.mark ?? '0');
    // On a SKU with levels, the levels are set in the same step, to PostgreSQL's less what is
    // pending at each: the drift is at some location too (a rolled-back adjustment lowered one).
    const levels = expectedLevels(stock, pgLevels, pending, expected);
    if (!(await ctx.store.counters.rebase(sku, observed, expected, mark, levels))) return 0;
    // Explained when movements Redis applied and PostgreSQL never recorded add up to the drift:
    // a lowering adjustment's Redis step ran (its field keeps its delta), then its transaction
    // rolled back (a Redis that answered too late, a failed COMMIT). Anything else is an alert.
    const unrecorded = unrecordedOf(stock, after);
    const rolledBack = unrecorded.length > 0 && unrecorded.reduce((sum, m) => sum + m.delta, 0) === drift;
    await ctx.record({
      kind: rolledBack ? 'rolled_back_movement' : 'total',
      alert: !rolledBack,
      sku,
      detail: {
        redis: observed,
        expected,
        postgres: pgTotal,
        pending: pending.length,
        ...(rolledBack ? { unrecorded } : {}),
      },
    });
    return 1;
  }
  // A movement durable in PostgreSQL and missing from Redis is applied now, not after a grace
  // period: it is idempotent by id, so the request still applying it finds it done. Waiting
  // would leave Redis promising stock that was sold (a restored, lagging copy of the counters).
  let applied = 0;
  for (const m of pending) {
    // A sale is completed as its commit would: the hold released with it, so the same units
    // are never taken from available twice (which could drop another reservation's hold).
    const alreadyApplied =
      m.kind === 'sale' && m.reservationId
        ? (
            await ctx.store.counters.commit(
              m.reservationId,
              [
                {
                  sku,
                  committedQuantity: -m.delta,
                  movements: [{ id: m.id, locationId: m.locationId, units: -m.delta }],
                },
              ],
              m.customerId ?? '',
            )
          ).alreadyFinished
        : (await ctx.store.counters.move(sku, m.id, m.delta, m.customerId ?? '', m.locationId)).alreadyApplied;
    if (alreadyApplied) continue;
    applied += 1;
    const late = ctx.now() - m.at.getTime() >= ctx.graceMs;
    await ctx.record({ kind: 'pending_movement', alert: false, sku, detail: { movement: m.id, delta: m.delta, late } });
  }
  if (pending.length === 0 && after.length > 0 && levelsOff(stock, pgLevels).length === 0) {
    // Everything up to the last movement is in total: a checkpoint keeps the m:<id> list short.
    // Not while a level differs from PostgreSQL's: the m:<id> of a transfer that rolled back after
    // its Redis step is what lets checkLevels tell that drift from drift nobody explains.
    await ctx.store.counters.rebase(sku, observed, observed, after.at(-1)!.id);
  }
  return applied;
}

/** The locations whose total Redis has otherwise than PostgreSQL (none on a SKU without levels). */
function levelsOff(stock: Record<string, string>, pgLevels: ReadonlyMap<string, number> | undefined): string[] {
  if (stock.locs === undefined || !pgLevels) return [];
  const all = [...new Set([...stock.locs.split(','), ...pgLevels.keys()])];
  return all.filter((loc) => Number(stock[`t:${loc}`] ?? 0) !== (pgLevels.get(loc) ?? 0));
}

/**
 * Movements Redis applied (`m:<id>` after the mark, keeping their delta: adjust.lua, transfer.lua)
 * that PostgreSQL never recorded: their transaction rolled back after their Redis step.
 */
function unrecordedOf(stock: Record<string, string>, after: readonly LedgerMovement[]) {
  return Object.entries(stock)
    .filter(
      ([field]) =>
        /^m:\d+$/.test(field) &&
        BigInt(field.slice(2)) > BigInt(stock.mark ?? '0') &&
        !after.some((m) => `m:${m.id}` === field),
    )
    .map(([field, delta]) => ({ movement: field.slice(2), delta: Number(delta) }));
}

/**
 * A SKU's level totals as Redis should have them (rebase.lua's `loc=units,…`): PostgreSQL's less the
 * movements Redis has not applied at each location. '' (levels left as they are) for a SKU without
 * levels, or when they do not add up to the expected total (PostgreSQL's levels were read apart
 * from its total, and a movement came between): checkLevels compares them on a later scan.
 */
function expectedLevels(
  stock: Record<string, string>,
  pgLevels: ReadonlyMap<string, number> | undefined,
  pending: readonly LedgerMovement[],
  expected: number,
): string {
  if (stock.locs === undefined || !pgLevels) return '';
  const levels = new Map(pgLevels);
  for (const m of pending) {
    const at = m.locationId ?? 'default';
    levels.set(at, (levels.get(at) ?? 0) - m.delta);
  }
  const units = [...levels.values()];
  if (units.some((n) => n < 0) || units.reduce((a, n) => a + n, 0) !== expected) return '';
  return [...levels].map(([loc, n]) => `${loc}=${n}`).join(',');
}

/** Holds Redis lost (restored) and holds of reservations that are over or unknown (released). */
export async function checkHolds(
  ctx: CheckContext,
  sku: string,
  holds: Record<string, string>,
  held: HeldLine[],
): Promise<number> {
  const scan = ctx.scanned;
  const { counters } = ctx.store;
  let repairs = 0;
  const inPg = new Map(held.map((h) => [h.reservationId, h.quantity]));
  for (const h of held) {
    const inRedis = holds[h.reservationId];
    if (inRedis === undefined) {
      // Never work in flight: a hold lands in Redis before its row, and a release or commit
      // ends the row before Redis. A HELD row without its hold is a loss: restored at once.
      const restored = await counters.restoreHold(sku, h.reservationId, h.quantity, h.customerId ?? '', h.allocation);
      if (restored === 'restored') {
        repairs += 1;
        await ctx.record({
          kind: 'lost_hold',
          alert: true,
          sku,
          reservationId: h.reservationId,
          detail: { quantity: h.quantity },
        });
      } else if (restored === 'short') {
        // Others hold the units now: the reservation's commit will be refused by PostgreSQL.
        await ctx.alert(`short:${sku}:${h.reservationId}`, {
          kind: 'unrestorable_hold',
          sku,
          reservationId: h.reservationId,
          detail: { quantity: h.quantity },
        });
      }
    } else if (Number(inRedis) !== h.quantity && ctx.settled(`mismatch:${sku}:${h.reservationId}`, inRedis)) {
      await ctx.alert(`mismatch:${sku}:${h.reservationId}`, {
        kind: 'hold_mismatch',
        sku,
        reservationId: h.reservationId,
        detail: { redis: Number(inRedis), postgres: h.quantity },
      });
    }
  }
  const strays = Object.keys(holds).filter((id) => !inPg.has(id) && ctx.settled(`phantom:${sku}:${id}`, holds[id]!));
  const statuses = await scan.statuses(strays);
  for (const id of strays) {
    const status = statuses.get(id);
    // A final reservation keeps its tombstone; an unknown or REJECTED one leaves its id usable.
    const { units } = await counters.release(id, [sku], status && FINAL.includes(status) ? id : '');
    if (units > 0) {
      repairs += 1;
      await ctx.record({
        kind: 'phantom_hold',
        alert: true,
        sku,
        reservationId: id,
        detail: { units, status: status ?? 'unknown' },
      });
    }
  }
  return repairs;
}

/**
 * A SKU's levels (contract v3; only a SKU with `locs` has them in Redis): each level's reserved
 * against its holds' allocations (fix-reserved recomputes them), and, when no movement is
 * pending, each level's total against PostgreSQL's (rebase sets them, with the SKU's total as
 * observed). Both once the same difference has lasted the grace period: a transfer's Redis step
 * runs inside its PostgreSQL transaction, so Redis may be ahead for the length of one.
 */
export async function checkLevels(
  ctx: CheckContext,
  sku: string,
  stock: Record<string, string>,
  holds: Record<string, string>,
  pgLevels: ReadonlyMap<string, number> | undefined,
  after: LedgerMovement[],
): Promise<number> {
  if (stock.locs === undefined) return 0;
  const locs = stock.locs.split(',');
  let repairs = 0;
  const held = new Map<string, number>();
  for (const [id, quantity] of Object.entries(holds)) {
    for (const a of parseAllocation(stock[`a:${id}`] ?? `default=${quantity}`))
      held.set(a.locationId, (held.get(a.locationId) ?? 0) + a.quantity);
  }
  const reservedOff = locs.filter((loc) => Number(stock[`r:${loc}`] ?? 0) !== (held.get(loc) ?? 0));
  if (
    reservedOff.length > 0 &&
    ctx.settled(`level_reserved:${sku}`, reservedOff.map((loc) => `${loc}=${stock[`r:${loc}`]}`).join(','))
  ) {
    const fixed = await ctx.store.counters.fixReserved(sku);
    if (fixed) {
      repairs += 1;
      await ctx.record({ kind: 'level_reserved', alert: true, sku, detail: { locations: reservedOff } });
    }
  }
  const pending = stock.mark === undefined || after.some((m) => stock[`m:${m.id}`] === undefined);
  if (pending || !pgLevels) return repairs;
  const totalOff = levelsOff(stock, pgLevels);
  if (
    totalOff.length > 0 &&
    ctx.settled(`level_total:${sku}`, totalOff.map((loc) => `${loc}=${stock[`t:${loc}`]}`).join(','))
  ) {
    const spec = [...pgLevels].map(([loc, units]) => `${loc}=${units}`).join(',');
    if (await ctx.store.counters.rebase(sku, Number(stock.total), Number(stock.total), stock.mark!, spec)) {
      repairs += 1;
      // Explained when movements Redis applied and PostgreSQL never recorded account for it: a
      // transfer whose transaction rolled back after its Redis step (a Redis that answered too
      // late) moved units between two levels and left the total as it was.
      const drift = totalOff.map((loc) => Number(stock[`t:${loc}`] ?? 0) - (pgLevels.get(loc) ?? 0));
      const unrecorded = unrecordedOf(stock, after);
      const sum = (v: number[]) => v.reduce((a, n) => a + n, 0);
      const rolledBack =
        unrecorded.length > 0 &&
        sum(drift) === sum(unrecorded.map((m) => m.delta)) &&
        sum(drift.map(Math.abs)) <= sum(unrecorded.map((m) => Math.abs(m.delta)));
      await ctx.record({
        kind: rolledBack ? 'rolled_back_movement' : 'level_total',
        alert: !rolledBack,
        sku,
        detail: {
          locations: totalOff,
          redis: totalOff.map((l) => Number(stock[`t:${l}`] ?? 0)),
          ...(rolledBack ? { unrecorded } : {}),
        },
      });
    }
  }
  return repairs;
}
