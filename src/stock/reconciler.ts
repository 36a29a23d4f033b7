/**
 * The reconciler: compares Redis with PostgreSQL per SKU and repairs what Redis lost or got
 * wrong, without touching work in flight. It runs once per deployment (the reconcilerWorkflow's
 * activity calls `scan` every few seconds).
 *
 * What only a loss can explain is repaired at once with idempotent scripts: a ledger movement
 * Redis has not applied (those after its mark that it does not list), a HELD reservation without
 * its hold. A difference that work in flight could explain (a hold without its row yet, a total
 * off by something no movement explains, reserved apart from the holds) is repaired only once it
 * has been seen, unchanged, for longer than `graceMs` (longer than any hold, commit or release
 * attempt), with compare-and-set scripts.
 *
 * Per-customer counts (item:{SKU}:customers) are compared too: each customer's held units with
 * the live holds, and on a limited SKU what each bought with the ledger; and a SKU's settings with
 * its row. Work in flight parts them for a moment, so they are repaired after the grace period.
 */
import type { ReservationStatus } from '../domain/types';
import type { LedgerMovement, SkuRow } from './ledger';
import type { HeldLine } from './ledger-scan';
import type { StockStore } from './store';

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
  | 'ledger_reserved';
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

export interface ReconcilerOptions {
  graceMs: number;
  pageSize?: number;
  /** Stale HELD reservations whose workflow is checked per scan. */
  orphanChecks?: number;
  now?: () => number;
  /** The reservations among `ids` whose workflow is still running (Temporal). */
  running: (ids: readonly string[]) => Promise<Set<string>>;
  /** Logs an event; the reconciler also counts it in PostgreSQL (reconciler_counts). */
  report: (event: ReconcilerEvent) => void;
  /** Called after each page of SKUs (the activity heartbeats). */
  progress?: () => void;
}

const FINAL: readonly ReservationStatus[] = ['COMMITTED', 'CANCELLED', 'EXPIRED'];

/** A difference the reconciler has seen, since when, and exactly what (see `settled`). */
export interface Observation {
  key: string;
  since: number;
  what: string;
}

/** The most observations carried from one reconciler run to the next (heartbeat details and workflow input stay small). */
const MAX_CARRIED = 1_000;

export class Reconciler {
  /** Differences seen in the last scan: key → when first seen and what exactly was seen. */
  private seen = new Map<string, { since: number; what: string }>();
  private next = new Map<string, { since: number; what: string }>();
  private orphanCursor = '';
  private readonly now: () => number;

  constructor(
    private readonly store: StockStore,
    private readonly options: ReconcilerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The differences seen by the last scan, for the next run of the reconciler to go on from (its
   * activity heartbeats them and returns them): a reconciler restarted on another worker keeps
   * counting the grace period from when a difference was first seen, instead of from zero.
   */
  observations(): Observation[] {
    return [...this.seen].slice(0, MAX_CARRIED).map(([key, { since, what }]) => ({ key, since, what }));
  }

  /** Goes on from a previous run's observations (replacing this one's). */
  restore(observations: readonly Observation[]): void {
    this.seen = new Map(observations.slice(0, MAX_CARRIED).map((o) => [o.key, { since: o.since, what: o.what }]));
  }

  /** One pass over every SKU, then over a batch of stale HELD reservations. The repairs made. */
  async scan(): Promise<number> {
    this.next = new Map();
    let repairs = 0;
    for (let after = ''; ; ) {
      const page = await this.store.scan.skuPage(after, this.options.pageSize ?? 200);
      if (page.length === 0) break;
      repairs += await this.scanPage(page);
      this.options.progress?.();
      after = page.at(-1)!;
    }
    repairs += await this.releaseOrphans();
    this.seen = this.next;
    return repairs;
  }

  /** True once `what` has been seen at `key` for longer than the grace period (and records it). */
  private settled(key: string, what: string): boolean {
    const before = this.seen.get(key);
    const since = before && before.what === what ? before.since : this.now();
    this.next.set(key, { since, what });
    return this.now() - since >= this.options.graceMs;
  }

  /** Logs and counts a repair (kind) and, when it is drift nobody explains, an alert (unexplained:kind). */
  private async record(event: Omit<ReconcilerEvent, 'repaired'>): Promise<void> {
    this.options.report({ ...event, repaired: true });
    await this.store.scan.count(event.kind);
    if (event.alert) await this.store.scan.count(`unexplained:${event.kind}`);
  }

  /** Logs and counts an alert that repairs nothing, once per incident: while `key` stays seen, it is not repeated. */
  private async alert(key: string, event: Omit<ReconcilerEvent, 'repaired' | 'alert'>): Promise<void> {
    const incident = `alerted:${key}`;
    const already = this.seen.has(incident);
    this.next.set(incident, { since: this.seen.get(incident)?.since ?? this.now(), what: '' });
    if (already) return;
    this.options.report({ ...event, alert: true, repaired: false });
    await this.store.scan.count(`unexplained:${event.kind}`);
  }

  private async scanPage(skus: string[]): Promise<number> {
    const { scan, counters } = this.store;
    // Redis first, then PostgreSQL: whatever Redis applied was durable in PostgreSQL before.
    const seenInRedis = await Promise.all(skus.map((sku) => counters.raw(sku)));
    const marks = new Map<string, string>();
    skus.forEach((sku, i) => {
      if (seenInRedis[i]!.stock.total !== undefined) marks.set(sku, seenInRedis[i]!.stock.mark ?? '0');
    });
    const limited = skus.filter((_, i) => seenInRedis[i]!.stock.maxPerCustomer !== undefined);
    const [rows, movements, held, bought] = await Promise.all([scan.skus(skus), scan.movementsAfter(marks), scan.heldLines(skus), scan.bought(limited)]);
    const movementsOf = new Map<string, LedgerMovement[]>();
    for (const m of movements) movementsOf.set(m.sku, [...(movementsOf.get(m.sku) ?? []), m]);

    let repairs = 0;
    for (const [i, sku] of skus.entries()) {
      const { stock, holds, customers } = seenInRedis[i]!;
      const row = rows.get(sku);
      if (row === undefined) continue; // created after the page was listed
      const pgTotal = row.total;
      if (stock.total === undefined) {
        repairs += await this.loadMissing(sku);
        continue;
      }
      repairs += await this.checkCustomers(sku, { stock, holds, customers }, row, movementsOf.get(sku) ?? [], held.get(sku) ?? [], bought.get(sku));
      repairs += await this.checkTotal(sku, stock, pgTotal, movementsOf.get(sku) ?? []);
      const restored = await this.checkHolds(sku, holds, held.get(sku) ?? []);
      repairs += restored;
      // `reserved` must be the sum of the holds: fixed right after holds came back, otherwise
      // once the same difference has lasted the grace period (a hold in flight never parts them:
      // every script changes both at once).
      const sum = Object.values(holds).reduce((n, q) => n + Number(q), 0);
      const apart = Number(stock.reserved ?? 0) !== sum && this.settled(`reserved:${sku}`, `${stock.reserved}/${sum}`);
      if (restored > 0 || apart) {
        const fixed = await counters.fixReserved(sku);
        // After restored holds this completes their repair; on its own it is a repair of its own.
        if (fixed && restored === 0) {
          repairs += 1;
          await this.record({ kind: 'reserved', alert: true, sku, detail: fixed });
        }
      }
      repairs += await this.checkLedgerReserved(sku, row.reserved, held.get(sku) ?? []);
      const available = Number(stock.total) - Number(stock.reserved ?? 0);
      if (available < 0) await this.alert(`negative:${sku}`, { kind: 'negative_available', sku, detail: { total: stock.total, reserved: stock.reserved } });
    }
    return repairs;
  }

  /**
   * A SKU's settings and per-customer counts, as Redis showed them, against PostgreSQL: the
   * settings with the row; each customer's held units (h:) and each hold's customer (o:) with the
   * live holds (PostgreSQL naming the customer of a hold whose o: was lost); on a limited SKU, what
   * each customer bought (b:) with the ledger, less the movements Redis had not applied yet. Each
   * difference is repaired once it has lasted the grace period: the held counts by
   * fix-customers.lua (from the holds, in one step), the settings and bought counts by loading
   * them again under the SKU's row lock (StockStore.applySettings).
   */
  private async checkCustomers(
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
    if (settings !== inRedis && this.settled(`settings:${sku}`, `${inRedis}>${settings}`)) {
      await this.store.applySettings(sku);
      await this.record({ kind: 'settings', alert: true, sku, detail: { redis: inRedis, postgres: settings } });
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
    if (wrong.length > 0 && this.settled(`customer_held:${sku}`, wrong.sort().join(','))) {
      const changed = await this.store.counters.fixCustomers(sku, [...customerOf]);
      if (changed > 0) {
        repairs += 1;
        await this.record({ kind: 'customer_held', alert: true, sku, detail: { fields: changed } });
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
    for (const [customer, units] of expected) if (units !== 0 && customers[`b:${customer}`] !== String(units)) off.push(customer);
    for (const field of Object.keys(customers)) if (field.startsWith('b:') && !expected.get(field.slice(2))) off.push(field.slice(2));
    if (off.length > 0 && this.settled(`customer_bought:${sku}`, off.sort().map((c) => `${c}=${customers[`b:${c}`] ?? 0}`).join(','))) {
      await this.store.applySettings(sku);
      repairs += 1;
      await this.record({ kind: 'customer_bought', alert: true, sku, detail: { customers: off.length } });
    }
    return repairs;
  }

  /** A SKU PostgreSQL has and Redis lost (its marker survived): loaded once it stays missing. */
  /**
   * PostgreSQL against itself: `skus.reserved` (what the threshold events and the stock gauges read)
   * must be the sum of the SKU's HELD lines. Every writer changes both in one transaction, so a
   * difference that lasts the grace period is drift nobody explains (a hand edit, a bug): it is
   * recomputed under the SKU's row lock, and alerted on.
   */
  private async checkLedgerReserved(sku: string, reserved: number, held: HeldLine[]): Promise<number> {
    const sum = held.reduce((n, h) => n + h.quantity, 0);
    if (reserved === sum || !this.settled(`ledger-reserved:${sku}`, `${reserved}/${sum}`)) return 0;
    const fixed = await this.store.scan.fixLedgerReserved(sku);
    if (!fixed) return 0;
    await this.record({ kind: 'ledger_reserved', alert: true, sku, detail: fixed });
    return 1;
  }

  private async loadMissing(sku: string): Promise<number> {
    if (!this.settled(`missing:${sku}`, '')) return 0;
    const [snapshot] = await this.store.scan.snapshot([sku]);
    if (!snapshot || !(await this.store.counters.load(sku, snapshot, 'missing')).loaded) return 0;
    await this.record({ kind: 'missing_sku', alert: true, sku, detail: { total: snapshot.total, holds: snapshot.holds.length } });
    return 1;
  }

  /**
   * Redis's total against PostgreSQL's, movement by movement. Movements Redis has not applied
   * are completed once older than the grace period (a crash between the two writes); a
   * difference no movement explains is drift: repaired (compare-and-set) once it persists.
   */
  private async checkTotal(sku: string, stock: Record<string, string>, pgTotal: number, after: LedgerMovement[]): Promise<number> {
    const observed = Number(stock.total);
    // Counters loaded before marks existed: take every movement as applied; the comparison with
    // PostgreSQL's total then sets a mark (a checkpoint) or repairs.
    const pending = stock.mark === undefined ? [] : after.filter((m) => stock[`m:${m.id}`] === undefined);
    const expected = pgTotal - pending.reduce((sum, m) => sum + m.delta, 0);
    const drift = observed - expected;
    if (drift !== 0) {
      if (!this.settled(`total:${sku}`, String(drift))) return 0;
      const mark = pending.length > 0 ? String(BigInt(pending[0]!.id) - 1n) : (after.at(-1)?.id ?? stock.mark ?? '0');
      if (!(await this.store.counters.rebase(sku, observed, expected, mark))) return 0;
      await this.record({ kind: 'total', alert: true, sku, detail: { redis: observed, expected, postgres: pgTotal, pending: pending.length } });
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
          ? (await this.store.counters.commit(m.reservationId, [{ sku, sold: -m.delta, movementId: m.id }], m.customerId ?? '')).alreadyFinished
          : (await this.store.counters.move(sku, m.id, m.delta, m.customerId ?? '')).alreadyApplied;
      if (alreadyApplied) continue;
      applied += 1;
      const late = this.now() - m.at.getTime() >= this.options.graceMs;
      await this.record({ kind: 'pending_movement', alert: false, sku, detail: { movement: m.id, delta: m.delta, late } });
    }
    if (pending.length === 0 && after.length > 0) {
      // Everything up to the last movement is in total: a checkpoint keeps the m:<id> list short.
      await this.store.counters.rebase(sku, observed, observed, after.at(-1)!.id);
    }
    return applied;
  }

  /** Holds Redis lost (restored) and holds of reservations that are over or unknown (released). */
  private async checkHolds(sku: string, holds: Record<string, string>, held: HeldLine[]): Promise<number> {
    const { counters, scan } = this.store;
    let repairs = 0;
    const inPg = new Map(held.map((h) => [h.reservationId, h.quantity]));
    for (const h of held) {
      const inRedis = holds[h.reservationId];
      if (inRedis === undefined) {
        // Never work in flight: a hold lands in Redis before its row, and a release or commit
        // ends the row before Redis. A HELD row without its hold is a loss: restored at once.
        const restored = await counters.restoreHold(sku, h.reservationId, h.quantity, h.customerId ?? '');
        if (restored === 'restored') {
          repairs += 1;
          await this.record({ kind: 'lost_hold', alert: true, sku, reservationId: h.reservationId, detail: { quantity: h.quantity } });
        } else if (restored === 'short') {
          // Others hold the units now: the reservation's commit will be refused by PostgreSQL.
          await this.alert(`short:${sku}:${h.reservationId}`, { kind: 'unrestorable_hold', sku, reservationId: h.reservationId, detail: { quantity: h.quantity } });
        }
      } else if (Number(inRedis) !== h.quantity && this.settled(`mismatch:${sku}:${h.reservationId}`, inRedis)) {
        await this.alert(`mismatch:${sku}:${h.reservationId}`, { kind: 'hold_mismatch', sku, reservationId: h.reservationId, detail: { redis: Number(inRedis), postgres: h.quantity } });
      }
    }
    const strays = Object.keys(holds).filter((id) => !inPg.has(id) && this.settled(`phantom:${sku}:${id}`, holds[id]!));
    const statuses = await scan.statuses(strays);
    for (const id of strays) {
      const status = statuses.get(id);
      // A final reservation keeps its tombstone; an unknown or REJECTED one leaves its id usable.
      const { units } = await counters.release(id, [sku], status && FINAL.includes(status) ? id : '');
      if (units > 0) {
        repairs += 1;
        await this.record({ kind: 'phantom_hold', alert: true, sku, reservationId: id, detail: { units, status: status ?? 'unknown' } });
      }
    }
    return repairs;
  }

  /** HELD reservations whose workflow is gone (terminated, Temporal state lost): released. */
  private async releaseOrphans(): Promise<number> {
    const { ledger, scan, counters } = this.store;
    const batch = await scan.staleHeld(this.options.graceMs, this.orphanCursor, this.options.orphanChecks ?? 100);
    this.orphanCursor = batch.length > 0 ? batch.at(-1)!.reservationId : '';
    if (batch.length === 0) return 0;
    const running = await this.options.running(batch.map((b) => b.reservationId));
    let repairs = 0;
    for (const orphan of batch.filter((b) => !running.has(b.reservationId))) {
      const status = orphan.expired ? 'EXPIRED' : 'CANCELLED';
      await ledger.reservations.recordRelease(orphan.reservationId, status, 'released by the reconciler: its workflow is gone');
      const { units } = await counters.release(orphan.reservationId, orphan.skus, orphan.reservationId);
      repairs += 1;
      await this.record({ kind: 'orphan', alert: true, reservationId: orphan.reservationId, detail: { status, units, skus: orphan.skus } });
    }
    return repairs;
  }
}
