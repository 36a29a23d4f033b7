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
import type { LedgerMovement } from '../stock/ledger';
import { bundleText, channelText } from '../stock/redis/counter-reads';
import { checkCustomers, checkHolds, checkLevels, checkTotal, type CheckContext, type ReconcilerEvent } from './checks';
import { ReconcilerStore, type HeldLine } from './store';
import type { StockStore } from '../stock/store';

export type { AlertKind, ReconcilerEvent, RepairKind } from './checks';

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

/** A difference the reconciler has seen, since when, and exactly what (see `settled`). */
export interface Observation {
  key: string;
  since: number;
  what: string;
}

/** The most observations carried from one reconciler run to the next (heartbeat details and workflow input stay small). */
const MAX_CARRIED = 1_000;

export class Reconciler implements CheckContext {
  /** Differences seen in the last scan: key → when first seen and what exactly was seen. */
  private seen = new Map<string, { since: number; what: string }>();
  private next = new Map<string, { since: number; what: string }>();
  private orphanCursor = '';
  readonly now: () => number;
  readonly graceMs: number;

  /** The ledger as the reconciler reads it. */
  readonly scanned: ReconcilerStore;

  constructor(
    readonly store: StockStore,
    private readonly options: ReconcilerOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.graceMs = options.graceMs;
    this.scanned = new ReconcilerStore(store.db);
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
    for (let after = ''; ;) {
      const { skus: page } = await this.store.ledger.skus.page(after, this.options.pageSize ?? 200);
      if (page.length === 0) break;
      repairs += await this.scanPage(page);
      this.options.progress?.();
      after = page.at(-1)!;
    }
    repairs += await this.releaseOrphans();
    repairs += await this.checkChannels();
    repairs += await this.checkBundles();
    this.seen = this.next;
    return repairs;
  }

  /**
   * Redis's copies of the registries the reads use (the channels, the bundles) against
   * PostgreSQL's. An entry Redis does not have (a new deployment, a Redis that lost its data) is
   * written at once, as a read that misses it would. One whose copy differs (a write whose Redis
   * step failed, two writes racing) is put right once the difference has lasted the grace period,
   * and counted.
   */
  private async checkChannels(): Promise<number> {
    const { counters, ledger } = this.store;
    const channels = await ledger.locations.channels();
    return this.checkMirror('channels', new Map(channels.map((c) => [c.channel, channelText(c)])), {
      raw: () => counters.channelsRaw(),
      put: (names) => counters.putChannels(channels.filter((c) => names.has(c.channel))),
      replace: () => counters.replaceChannels(channels),
    });
  }

  private async checkBundles(): Promise<number> {
    const { counters, ledger } = this.store;
    const bundles = await ledger.bundles.all();
    return this.checkMirror('bundles', new Map(bundles.map((b) => [b.sku, bundleText(b)])), {
      raw: () => counters.bundlesRaw(),
      put: (names) => counters.putBundles(bundles.filter((b) => names.has(b.sku))),
      replace: () => counters.replaceBundles(bundles),
    });
  }

  private async checkMirror(
    kind: 'channels' | 'bundles',
    wanted: ReadonlyMap<string, string>,
    mirror: {
      raw(): Promise<Record<string, string>>;
      put(names: ReadonlySet<string>): Promise<void>;
      replace(): Promise<void>;
    },
  ): Promise<number> {
    const mirrored = await mirror.raw();
    await mirror.put(new Set([...wanted.keys()].filter((name) => mirrored[name] === undefined)));
    const stale = Object.keys(mirrored).filter((name) => mirrored[name] !== wanted.get(name));
    if (stale.length === 0) return 0;
    if (!this.settled(kind, JSON.stringify(stale.map((name) => [name, mirrored[name]])))) return 0;
    await mirror.replace();
    await this.record({ kind, alert: false, detail: { [kind]: stale } });
    return 1;
  }

  /** True once `what` has been seen at `key` for longer than the grace period (and records it). */
  settled(key: string, what: string): boolean {
    const before = this.seen.get(key);
    const since = before && before.what === what ? before.since : this.now();
    this.next.set(key, { since, what });
    return this.now() - since >= this.options.graceMs;
  }

  /** Logs and counts a repair (kind) and, when it is drift nobody explains, an alert (unexplained:kind). */
  async record(event: Omit<ReconcilerEvent, 'repaired'>): Promise<void> {
    this.options.report({ ...event, repaired: true });
    await this.store.drift.count(event.kind);
    if (event.alert) await this.store.drift.count(`unexplained:${event.kind}`);
  }

  /** Logs and counts an alert that repairs nothing, once per incident: while `key` stays seen, it is not repeated. */
  async alert(key: string, event: Omit<ReconcilerEvent, 'repaired' | 'alert'>): Promise<void> {
    const incident = `alerted:${key}`;
    const already = this.seen.has(incident);
    this.next.set(incident, { since: this.seen.get(incident)?.since ?? this.now(), what: '' });
    if (already) return;
    this.options.report({ ...event, alert: true, repaired: false });
    await this.store.drift.count(`unexplained:${event.kind}`);
  }

  private async scanPage(skus: string[]): Promise<number> {
    const scan = this.scanned;
    const { counters } = this.store;
    // Redis first, then PostgreSQL: whatever Redis applied was durable in PostgreSQL before.
    const seenInRedis = await Promise.all(skus.map((sku) => counters.raw(sku)));
    const marks = new Map<string, string>();
    skus.forEach((sku, i) => {
      if (seenInRedis[i]!.stock.total !== undefined) marks.set(sku, seenInRedis[i]!.stock.mark ?? '0');
    });
    const limited = skus.filter((_, i) => seenInRedis[i]!.stock.maxPerCustomer !== undefined);
    const spread = skus.filter((_, i) => seenInRedis[i]!.stock.locs !== undefined);
    const [rows, movements, held, bought, levels] = await Promise.all([
      scan.skus(skus),
      scan.movementsAfter(marks),
      scan.heldLines(skus),
      scan.bought(limited),
      scan.levels(spread),
    ]);
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
      repairs += await checkCustomers(
        this,
        sku,
        { stock, holds, customers },
        row,
        movementsOf.get(sku) ?? [],
        held.get(sku) ?? [],
        bought.get(sku),
      );
      repairs += await checkTotal(this, sku, stock, pgTotal, movementsOf.get(sku) ?? [], levels.get(sku));
      const restored = await checkHolds(this, sku, holds, held.get(sku) ?? []);
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
      repairs += await checkLevels(this, sku, stock, holds, levels.get(sku), movementsOf.get(sku) ?? []);
      repairs += await this.checkLedgerReserved(sku, row.reserved, held.get(sku) ?? []);
      const available = Number(stock.total) - Number(stock.reserved ?? 0);
      if (available < 0)
        await this.alert(`negative:${sku}`, {
          kind: 'negative_available',
          sku,
          detail: { total: stock.total, reserved: stock.reserved },
        });
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
    const fixed = await this.store.ledger.skus.recomputeReserved(sku);
    if (!fixed) return 0;
    await this.record({ kind: 'ledger_reserved', alert: true, sku, detail: fixed });
    return 1;
  }

  private async loadMissing(sku: string): Promise<number> {
    if (!this.settled(`missing:${sku}`, '')) return 0;
    const [snapshot] = await this.scanned.snapshot([sku]);
    if (!snapshot || !(await this.store.counters.load(sku, snapshot, 'missing')).loaded) return 0;
    await this.record({
      kind: 'missing_sku',
      alert: true,
      sku,
      detail: { total: snapshot.total, holds: snapshot.holds.length },
    });
    return 1;
  }

  /** HELD reservations whose workflow is gone (terminated, Temporal state lost): released. */
  private async releaseOrphans(): Promise<number> {
    const scan = this.scanned;
    const { ledger, counters } = this.store;
    const batch = await scan.staleHeld(this.options.graceMs, this.orphanCursor, this.options.orphanChecks ?? 100);
    this.orphanCursor = batch.length > 0 ? batch.at(-1)!.reservationId : '';
    if (batch.length === 0) return 0;
    const running = await this.options.running(batch.map((b) => b.reservationId));
    let repairs = 0;
    for (const orphan of batch.filter((b) => !running.has(b.reservationId))) {
      const status = orphan.expired ? 'EXPIRED' : 'CANCELLED';
      await ledger.reservations.recordRelease(
        orphan.reservationId,
        status,
        'released by the reconciler: its workflow is gone',
      );
      const { units } = await counters.release(orphan.reservationId, orphan.skus, orphan.reservationId);
      repairs += 1;
      await this.record({
        kind: 'orphan',
        alert: true,
        reservationId: orphan.reservationId,
        detail: { status, units, skus: orphan.skus },
      });
    }
    return repairs;
  }
}
