/**
 * The mixed workload: what shoppers, a flash-sale crowd, a payment service, a stock clerk and
 * product pages do, at a rate two cores can carry beside the whole stack. Everything a client
 * heard is written down (Tracker), because the checks compare it with the stores afterwards:
 * a 200 COMMITTED a client heard must be a sale in PostgreSQL.
 *
 * Shoppers reserve multi-SKU carts with short TTLs (2–12 s, so every reservation ends within a
 * phase) and then commit (all or part), cancel, extend then commit, let it expire, or leave it to
 * the payment service (paymentSucceeded / paymentFailed signals through the Temporal client,
 * sometimes twice). Clients retry a 503 with the same reservation id, as the contract allows;
 * in resend mode they also give up early and resend, with the same id or (as a careless client
 * would) without one.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Http } from './http';
import { sleep } from './procs';

export interface Line {
  sku: string;
  quantity: number;
}

/** A reservation as the clients know it. */
export interface TrackedReservation {
  id: string;
  phase: string;
  items: Line[];
  createdAt: number;
  /** The latest expiresAt a client was told (or the requested TTL from the request's time). */
  expiresAtMs: number;
  /** The last status a client heard for it. */
  heard: string;
  /** What a 200 COMMITTED answer said was sold, per SKU. */
  committedHeard?: Record<string, number>;
}

export interface PhaseSkus {
  phase: string;
  normal: string[];
  flash: string;
}

/** Everything the clients heard, across the run. */
export class Tracker {
  readonly reservations = new Map<string, TrackedReservation>();
  /** Creates whose answer never came and that carried no id: they may or may not exist. */
  readonly unknownOutcomes = new Map<string, number>();
  readonly skus: PhaseSkus[] = [];
  /** Commits refused with INSUFFICIENT_STOCK after a 201 HELD (a hold lost by a store failure). */
  readonly brokenHolds = new Map<string, number>();

  allSkus(): string[] {
    return this.skus.flatMap((s) => [...s.normal, s.flash]);
  }

  phaseOfSku(sku: string): string | undefined {
    return this.skus.find((s) => s.flash === sku || s.normal.includes(sku))?.phase;
  }

  bump(map: Map<string, number>, phase: string): void {
    map.set(phase, (map.get(phase) ?? 0) + 1);
  }
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const int = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

type Fate = 'commit' | 'commit-part' | 'cancel' | 'extend-commit' | 'expire' | 'pay-ok' | 'pay-fail';
const FATES: [Fate, number][] = [
  ['commit', 32],
  ['commit-part', 10],
  ['cancel', 14],
  ['extend-commit', 10],
  ['expire', 14],
  ['pay-ok', 14],
  ['pay-fail', 6],
];
function pickFate(): Fate {
  let r = Math.random() * FATES.reduce((s, [, w]) => s + w, 0);
  for (const [fate, w] of FATES) if ((r -= w) < 0) return fate;
  return 'commit';
}

export interface WorkloadOptions {
  shoppers: number;
  readers: number;
  /** Buyers per flash-sale storm and the pause between storms. */
  stormSize: number;
  stormEveryMs: number;
  adminEveryMs: number;
  /** TTLs (s) of reservations that will be settled, and of those left to expire. */
  ttlS: [number, number];
  expireTtlS: [number, number];
}

export const DEFAULT_WORKLOAD: WorkloadOptions = { shoppers: 6, readers: 2, stormSize: 40, stormEveryMs: 8_000, adminEveryMs: 700, ttlS: [4, 12], expireTtlS: [2, 5] };
/** For the short tests: fewer clients, shorter TTLs, so a phase settles in seconds. */
export const SHORT_WORKLOAD: WorkloadOptions = { shoppers: 4, readers: 1, stormSize: 25, stormEveryMs: 4_000, adminEveryMs: 800, ttlS: [2, 5], expireTtlS: [1, 3] };

export class Workload {
  /** Clients give up after a short random time and resend (the client-resend fault). */
  resendMode = false;
  private running = false;
  private loops: Promise<void>[] = [];
  private skus?: PhaseSkus;
  /** Commits being sent right now (a PostgreSQL crash is aimed at them). */
  commitsInFlight = 0;
  requestsInFlight = 0;

  constructor(
    private readonly http: Http,
    private readonly temporal: () => Promise<Client>,
    readonly tracker: Tracker,
    private readonly options: WorkloadOptions = DEFAULT_WORKLOAD,
  ) {}

  /** Creates a phase's SKUs (admin, with Idempotency-Keys, retried until they exist). */
  async createSkus(phase: string, tag: string): Promise<PhaseSkus> {
    const normal = ['A', 'B', 'C', 'D', 'E', 'F'].map((x) => `${tag}-${x}`);
    const flash = `${tag}-FLASH`;
    const want: [string, number][] = [...normal.map((s): [string, number] => [s, int(30, 60)]), [flash, 8]];
    for (const [sku, total] of want) {
      for (let attempt = 1; ; attempt++) {
        const a = await this.http.call('POST', '/v1/skus', { op: 'create-sku', cls: 'write', admin: true, body: { sku, total, name: `fault test ${sku}` }, idempotencyKey: `create-${sku}` });
        if (a.outcome === 201 || a.outcome === 200 || a.outcome === 409) break;
        if (attempt >= 60) throw new Error(`could not create SKU ${sku}: ${String(a.outcome)} ${JSON.stringify(a.body)}`);
        await sleep(1_000);
      }
    }
    const skus = { phase, normal, flash };
    this.tracker.skus.push(skus);
    return skus;
  }

  start(skus: PhaseSkus): void {
    this.skus = skus;
    this.running = true;
    const o = this.options;
    this.loops = [
      ...Array.from({ length: o.shoppers }, () => this.loop(() => this.shopper())),
      ...Array.from({ length: o.readers }, () => this.loop(() => this.reader())),
      this.loop(() => this.clerk()),
      this.loop(() => this.storm()),
    ];
  }

  /** Stops new work and waits for what is in flight (each request is bounded by its deadline). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.allSettled(this.loops);
    this.loops = [];
  }

  private async loop(step: () => Promise<void>): Promise<void> {
    while (this.running) {
      try {
        await step();
      } catch {
        await sleep(200); // a harness-side surprise must not stop the traffic
      }
    }
  }

  private get phase(): string {
    return this.http.recorder.phase;
  }

  private clientTimeout(): number | undefined {
    return this.resendMode ? int(150, 1_200) : undefined;
  }

  // ------------------------------------------------------------------ reservations

  /**
   * POST /v1/reservations with the contract's retry rules: a 503 or a lost answer is retried with
   * the same id and body. Without an id, a lost answer is resent as a new request (a careless
   * client): the first one may exist, and the checks must still find it finished later.
   */
  async reserve(items: Line[], ttlSeconds: number, withId: boolean): Promise<TrackedReservation | undefined> {
    const id = withId ? `f${randomUUID().replace(/-/g, '').slice(0, 22)}` : undefined;
    const phase = this.phase;
    for (let attempt = 1; attempt <= 5 && this.running; attempt++) {
      const sentAt = Date.now();
      const body = { ...(id ? { reservationId: id } : {}), items, ttlSeconds };
      this.requestsInFlight++;
      const a = await this.http.call('POST', '/v1/reservations', { op: 'reserve', cls: 'write', body, clientTimeoutMs: this.clientTimeout() }).finally(() => this.requestsInFlight--);
      if (a.outcome === 201 || a.outcome === 200) {
        const view = a.body as { reservationId: string; expiresAt: string; status: string };
        const r: TrackedReservation = {
          id: view.reservationId,
          phase,
          items,
          createdAt: sentAt,
          expiresAtMs: Date.parse(view.expiresAt) || sentAt + ttlSeconds * 1000,
          heard: view.status,
        };
        this.tracker.reservations.set(r.id, r);
        return r;
      }
      if (typeof a.outcome === 'number' && a.outcome >= 400 && a.outcome < 500) {
        if (id) this.tracker.reservations.set(id, { id, phase, items, createdAt: sentAt, expiresAtMs: sentAt + ttlSeconds * 1000, heard: `refused ${a.outcome}` });
        return undefined;
      }
      // 503, 5xx, no answer: the outcome is unknown.
      if (id) {
        this.tracker.reservations.set(id, { id, phase, items, createdAt: sentAt, expiresAtMs: sentAt + ttlSeconds * 1000, heard: `unknown ${String(a.outcome)}` });
      } else if (a.outcome !== 503) {
        this.tracker.bump(this.tracker.unknownOutcomes, phase);
      }
      await sleep(a.outcome === 503 ? 300 * attempt : a.outcome === 'conn-error' ? 700 : 50);
    }
    return undefined;
  }

  /** Sends an update (commit/cancel/extend), retrying 503s and lost answers; the last answer. */
  private async update(r: TrackedReservation, action: 'commit' | 'cancel' | 'extend', body: unknown) {
    let last: Awaited<ReturnType<Http['call']>> | undefined;
    for (let attempt = 1; attempt <= 8; attempt++) {
      if (action === 'commit') this.commitsInFlight++;
      this.requestsInFlight++;
      last = await this.http
        .call('POST', `/v1/reservations/${r.id}/${action}`, { op: action, cls: 'write', body, clientTimeoutMs: this.clientTimeout() })
        .finally(() => {
          this.requestsInFlight--;
          if (action === 'commit') this.commitsInFlight--;
        });
      if (typeof last.outcome === 'number' && last.outcome < 500) break;
      await sleep(last.outcome === 'conn-error' ? 700 : Math.min(400 * attempt, 3_000));
    }
    return last!;
  }

  async commit(r: TrackedReservation, part: boolean): Promise<void> {
    const items = part ? r.items.map((l) => ({ sku: l.sku, quantity: int(0, l.quantity) })).filter((l) => l.quantity > 0) : undefined;
    const a = await this.update(r, 'commit', { paymentId: `pay-${r.id}`, ...(items && items.length > 0 ? { items } : {}) });
    if (a.outcome === 200 && a.body?.status === 'COMMITTED') {
      r.heard = 'COMMITTED';
      r.committedHeard = Object.fromEntries((a.body.items as { sku: string; committedQuantity: number }[]).map((l) => [l.sku, l.committedQuantity]));
    } else if (a.outcome === 409 && a.body?.error?.code === 'INSUFFICIENT_STOCK') {
      r.heard = 'CANCELLED (INSUFFICIENT_STOCK at commit)';
      this.tracker.bump(this.tracker.brokenHolds, r.phase);
    } else if (typeof a.outcome === 'number' && a.outcome === 409) {
      r.heard = String(a.body?.error?.code ?? '409');
    }
  }

  private async cancel(r: TrackedReservation): Promise<void> {
    const a = await this.update(r, 'cancel', { reason: 'changed my mind' });
    if (a.outcome === 200) r.heard = a.body?.status ?? r.heard;
  }

  private async extend(r: TrackedReservation): Promise<void> {
    const a = await this.update(r, 'extend', { ttlSeconds: int(...this.options.ttlS) });
    if (a.outcome === 200 && a.body?.expiresAt) r.expiresAtMs = Math.max(r.expiresAtMs, Date.parse(a.body.expiresAt));
  }

  /** The payment service: a signal through Temporal (retried while Temporal is down), sometimes twice. */
  private async pay(r: TrackedReservation, ok: boolean): Promise<void> {
    const twice = Math.random() < 0.3;
    for (let n = 0; n < (twice ? 2 : 1); n++) {
      for (let attempt = 1; attempt <= 10; attempt++) {
        try {
          const client = await this.temporal();
          const handle = client.workflow.getHandle(`reservation-${r.id}`);
          await client.withDeadline(Date.now() + 5_000, () =>
            ok ? handle.signal('paymentSucceeded', { paymentId: `pay-${r.id}` }) : handle.signal('paymentFailed', { paymentId: `pay-${r.id}`, reason: 'card declined' }),
          );
          break;
        } catch (err) {
          if (/not found|already completed/i.test(String((err as Error)?.message))) break;
          await sleep(1_000);
        }
      }
    }
  }

  private async settle(r: TrackedReservation, fate: Fate): Promise<void> {
    await sleep(int(0, 1_500));
    switch (fate) {
      case 'commit':
        return this.commit(r, false);
      case 'commit-part':
        return this.commit(r, true);
      case 'cancel':
        return this.cancel(r);
      case 'extend-commit':
        await this.extend(r);
        await sleep(int(200, 2_000));
        return this.commit(r, false);
      case 'expire':
        return;
      case 'pay-ok':
        return this.pay(r, true);
      case 'pay-fail':
        return this.pay(r, false);
    }
  }

  private async shopper(): Promise<void> {
    const skus = this.skus!;
    const lines = int(1, 3);
    const chosen = [...skus.normal].sort(() => Math.random() - 0.5).slice(0, lines);
    const items = chosen.map((sku) => ({ sku, quantity: int(1, 3) }));
    const fate = pickFate();
    const ttl = fate === 'expire' ? int(...this.options.expireTtlS) : int(...this.options.ttlS);
    const r = await this.reserve(items, ttl, Math.random() < 0.8);
    if (r && r.heard === 'HELD') await this.settle(r, fate);
    else await sleep(int(200, 800));
  }

  /** A flash sale: a crowd on a SKU with little stock at once; the winners mostly buy. */
  private async storm(): Promise<void> {
    const skus = this.skus!;
    await sleep(int(1_000, this.options.stormEveryMs));
    if (!this.running) return;
    await Promise.all(
      Array.from({ length: this.options.stormSize }, async () => {
        const r = await this.reserve([{ sku: skus.flash, quantity: 1 }], int(...this.options.ttlS), true);
        if (!r || r.heard !== 'HELD') return;
        const roll = Math.random();
        await this.settle(r, roll < 0.6 ? 'commit' : roll < 0.75 ? 'pay-ok' : roll < 0.88 ? 'cancel' : 'expire');
      }),
    );
    // Restock the flash SKU a little for the next storm (an admin write during the storm's tail).
    await this.http.call('POST', `/v1/skus/${skus.flash}/restock`, { op: 'restock', cls: 'write', admin: true, body: { quantity: int(3, 6), reason: 'next wave' }, idempotencyKey: `flash-${randomUUID()}` });
  }

  // ------------------------------------------------------------------ admin and readers

  /** The stock clerk: restocks, adjustments (some refused as WOULD_OVERSELL), returns of sold units. */
  private async clerk(): Promise<void> {
    await sleep(this.options.adminEveryMs);
    const skus = this.skus!;
    const roll = Math.random();
    if (roll < 0.35) {
      const key = Math.random() < 0.5 ? `restock-${randomUUID()}` : undefined;
      const body = { quantity: int(1, 5), reason: 'delivery' };
      const sku = pick(skus.normal);
      await this.http.call('POST', `/v1/skus/${sku}/restock`, { op: 'restock', cls: 'write', admin: true, body, idempotencyKey: key });
      if (key && Math.random() < 0.5) await this.http.call('POST', `/v1/skus/${sku}/restock`, { op: 'restock', cls: 'write', admin: true, body, idempotencyKey: key });
    } else if (roll < 0.6) {
      const delta = Math.random() < 0.5 ? -int(1, 3) : int(1, 3);
      await this.http.call('POST', `/v1/skus/${pick(skus.normal)}/adjustments`, { op: 'adjust', cls: 'write', admin: true, body: { delta, reason: 'stock count' }, idempotencyKey: `adjust-${randomUUID()}` });
    } else if (roll < 0.85) {
      const sold = [...this.tracker.reservations.values()].filter((r) => r.committedHeard && Object.values(r.committedHeard).some((q) => q > 0));
      if (sold.length === 0) return;
      const r = pick(sold.slice(-50));
      const [sku] = Object.entries(r.committedHeard!).find(([, q]) => q > 0)!;
      await this.http.call('POST', '/v1/returns', { op: 'return', cls: 'write', admin: true, body: { reservationId: r.id, items: [{ sku, quantity: 1 }], reason: 'damaged' }, idempotencyKey: `return-${randomUUID()}` });
    } else {
      const sku = pick([...skus.normal, skus.flash]);
      await this.http.call('GET', `/v1/skus/${sku}/${Math.random() < 0.5 ? 'holds' : 'movements?limit=20'}`, { op: 'admin-read', cls: 'read', admin: true });
    }
  }

  /** Product pages and order pages: availability, one SKU, one reservation. */
  private async reader(): Promise<void> {
    await sleep(int(80, 250));
    const skus = this.skus!;
    const roll = Math.random();
    if (roll < 0.5) {
      await this.http.call('GET', `/v1/availability?skus=${[...skus.normal, skus.flash].join(',')}`, { op: 'availability', cls: 'read' });
    } else if (roll < 0.8) {
      await this.http.call('GET', `/v1/skus/${pick([...skus.normal, skus.flash])}`, { op: 'get-sku', cls: 'read' });
    } else {
      const recent = [...this.tracker.reservations.values()].slice(-100);
      if (recent.length === 0) return;
      await this.http.call('GET', `/v1/reservations/${pick(recent).id}`, { op: 'get-reservation', cls: 'read' });
    }
  }
}
