/**
 * The mixed workload: what shoppers, a flash-sale crowd, a payment service, a stock clerk and
 * product pages do, at a rate two cores can carry beside the whole stack. Everything a client
 * heard is written down (Tracker), because the checks compare it with the stores afterwards
 * (promises.ts): a 201 HELD is a promise until the deadline it told, a 200 COMMITTED must be a
 * sale in PostgreSQL, a 200 CANCELLED a cancellation, an accepted paymentSucceeded a sale, ...
 *
 * Shoppers reserve multi-SKU carts with short TTLs (2–12 s, so every reservation ends within a
 * phase), most of them for a customer (one SKU of each phase has a per-customer limit, so the
 * per-customer counts are exercised), and then commit (all or part), cancel, extend then commit,
 * let it expire, or leave it to the payment service (paymentSucceeded / paymentFailed signals
 * through the Temporal client, sometimes twice). Clients retry a 503 with the same reservation
 * id, as the contract allows; in resend mode they also give up early and resend, with the same
 * id or (as a careless client would) without one.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Http, Outcome } from './http';
import { sleep } from './procs';

export interface Line {
  sku: string;
  quantity: number;
}

export type Action = 'commit' | 'cancel' | 'extend' | 'paymentSucceeded' | 'paymentFailed';

/**
 * One thing a client asked of a reservation after creating it, and what it was last told. A
 * request is retried after a 503 or a lost answer (which changed nothing the contract lets a
 * client rely on), so only the last attempt's answer counts.
 */
export interface ClientStep {
  action: Action;
  /** When the first attempt was sent, when the last one was, and when its answer came (a signal: when Temporal accepted it). */
  sentAt: number;
  lastSentAt: number;
  at: number;
  /** The last attempt's HTTP status or why there was none; a signal's is 'accepted', 'refused' (not found, completed) or 'unknown'. */
  outcome: Outcome | 'accepted' | 'refused' | 'unknown';
  /** The error code of a 4xx answer; the status of a 200 view. */
  code?: string;
  status?: string;
  /** extend: the TTL asked, and the deadline a 200 told. */
  ttlS?: number;
  expiresAtMs?: number;
}

/** A reservation as the clients know it. */
export interface TrackedReservation {
  id: string;
  phase: string;
  items: Line[];
  customerId?: string;
  createdAt: number;
  /** The latest expiresAt a client was told (or the requested TTL from the request's time): how long to wait for it. */
  expiresAtMs: number;
  /** The last status a client heard for it. */
  heard: string;
  /** When a client heard it HELD (201, or 200 HELD on a repeat): a promise from then on (API.md, "Promises"). */
  heldAt?: number;
  /**
   * Until when the promise runs: the deadline of the last HELD or extend answer. An extend whose
   * answer was lost may have moved it to any time from its first attempt plus its TTL, so the
   * promise is then only as long as the shorter of the two.
   */
  promisedUntilMs?: number;
  /** What a 200 COMMITTED answer said was sold, per SKU. */
  committedHeard?: Record<string, number>;
  /** Everything asked of it after the create, in order. */
  steps: ClientStep[];
  /** The create's attempts (sent, answered, what), when there was more than one or it was refused: evidence for a finding. */
  attempts?: string[];
}

export interface PhaseSkus {
  phase: string;
  normal: string[];
  flash: string;
  /** The SKU with a per-customer limit (one of `normal`), and the limit. */
  limited: string;
  maxPerCustomer: number;
  /** Customers of the phase (shoppers pick one for most carts). */
  customers: string[];
  /**
   * Contract v3: SKUs of `normal` stocked at two locations, `default` and the phase's `warehouse`
   * (the shoppers' carts are allocated over both through the channel `default`; the clerk names a
   * location on their restocks and adjustments, and moves units between them).
   */
  spread: string[];
  warehouse: string;
}

/** Everything the clients heard, across the run. */
export class Tracker {
  readonly reservations = new Map<string, TrackedReservation>();
  /** Creates whose answer never came and that carried no id: they may or may not exist, under an id nobody knows. */
  readonly unknownOutcomes = new Map<string, number>();
  readonly skus: PhaseSkus[] = [];
  /**
   * When Redis last lost data, per SKU and for all of them (a wipe): the `done` tombstones
   * written before that are gone, so only reservations finished after it must have theirs.
   */
  readonly redisLostAt = new Map<string, number>();
  redisWipedAt = 0;

  allSkus(): string[] {
    return this.skus.flatMap((s) => [...s.normal, s.flash]);
  }

  skusOf(phase: string): string[] {
    return this.skus.filter((s) => s.phase === phase).flatMap((s) => [...s.normal, s.flash]);
  }

  lostAt(sku: string): number {
    return Math.max(this.redisWipedAt, this.redisLostAt.get(sku) ?? 0);
  }

  /** Reservations a client holds a promise for right now (heard HELD, deadline ahead, not heard final): their workflows wait on timers. */
  livePromises(now = Date.now()): number {
    let n = 0;
    for (const r of this.reservations.values()) if (r.heard === 'HELD' && (r.promisedUntilMs ?? 0) > now) n++;
    return n;
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

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  shoppers: 6,
  readers: 2,
  stormSize: 40,
  stormEveryMs: 8_000,
  adminEveryMs: 700,
  ttlS: [4, 12],
  expireTtlS: [2, 5],
};
/** For the short tests: fewer clients, shorter TTLs, so a phase settles in seconds. */
export const SHORT_WORKLOAD: WorkloadOptions = {
  shoppers: 4,
  readers: 1,
  stormSize: 25,
  stormEveryMs: 4_000,
  adminEveryMs: 800,
  ttlS: [2, 5],
  expireTtlS: [1, 3],
};

/** Customers per phase, and the per-customer limit of the phase's limited SKU: tight enough that some carts are refused CUSTOMER_LIMIT_EXCEEDED. */
const CUSTOMERS = 20;
const MAX_PER_CUSTOMER = 4;

/** The error code of an answer's body, if any. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const codeOf = (body: any): string | undefined => (typeof body?.error?.code === 'string' ? body.error.code : undefined);

export class Workload {
  /** Clients give up after a short random time and resend (the client-resend fault). */
  resendMode = false;
  private running = false;
  private loops: Promise<void>[] = [];
  private skus?: PhaseSkus;
  /** Commits being sent right now (a PostgreSQL crash is aimed at them). */
  commitsInFlight = 0;
  /** Reservation writes (creates, commits, cancels, extends) being sent right now: each needs Temporal and a workflow task. */
  requestsInFlight = 0;

  constructor(
    private readonly http: Http,
    private readonly temporal: () => Promise<Client>,
    readonly tracker: Tracker,
    private readonly options: WorkloadOptions = DEFAULT_WORKLOAD,
  ) {}

  /**
   * Creates a phase's SKUs (admin, with Idempotency-Keys, retried until they exist) and gives
   * one of them a per-customer limit (PATCH), so the per-customer counts are exercised.
   */
  async createSkus(phase: string, tag: string): Promise<PhaseSkus> {
    const normal = ['A', 'B', 'C', 'D', 'E', 'F'].map((x) => `${tag}-${x}`);
    const flash = `${tag}-FLASH`;
    const limited = normal[5]!;
    const want: [string, number][] = [...normal.map((s): [string, number] => [s, int(30, 60)]), [flash, 8]];
    const spread = [normal[1]!, normal[2]!];
    const warehouse = `${tag}-WH`;
    const admin = async (what: string, method: string, path: string, body: unknown, idempotencyKey?: string) => {
      for (let attempt = 1; ; attempt++) {
        const a = await this.http.call(method, path, {
          op: method === 'PATCH' ? 'sku-settings' : 'create-sku',
          cls: 'write',
          admin: true,
          body,
          idempotencyKey,
        });
        if (a.outcome === 201 || a.outcome === 200 || (a.outcome === 409 && method === 'POST')) return;
        if (attempt >= 60) throw new Error(`could not ${what}: ${String(a.outcome)} ${JSON.stringify(a.body)}`);
        await sleep(1_000);
      }
    };
    await admin(`create location ${warehouse}`, 'POST', '/v1/locations', { locationId: warehouse, name: warehouse });
    for (const [sku, total] of want) {
      // A spread SKU: its units split between `default` and the warehouse, the warehouse's fewer,
      // so carts fill it, split over both, and move on to `default`.
      const body = spread.includes(sku)
        ? { sku, locations: { default: total - Math.floor(total / 3), [warehouse]: Math.floor(total / 3) } }
        : { sku, total };
      await admin(`create SKU ${sku}`, 'POST', '/v1/skus', { ...body, name: `fault test ${sku}` }, `create-${sku}`);
    }
    await admin(`limit ${limited} per customer`, 'PATCH', `/v1/skus/${limited}`, { maxPerCustomer: MAX_PER_CUSTOMER });
    const customers = Array.from({ length: CUSTOMERS }, (_, i) => `${tag}-c${i + 1}`);
    const skus: PhaseSkus = {
      phase,
      normal,
      flash,
      limited,
      maxPerCustomer: MAX_PER_CUSTOMER,
      customers,
      spread,
      warehouse,
    };
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
   * client): the first one may exist, and the checks must still find it finished later. A 503
   * names the id the service gave the request (API.md: a 503 changed nothing that is not later
   * completed or undone), so that one is known and tracked.
   */
  async reserve(
    items: Line[],
    ttlSeconds: number,
    withId: boolean,
    customerId?: string,
  ): Promise<TrackedReservation | undefined> {
    const id = withId ? `f${randomUUID().replace(/-/g, '').slice(0, 22)}` : undefined;
    const phase = this.phase;
    const tracked = (rid: string, sentAt: number, heard: string): TrackedReservation => ({
      id: rid,
      phase,
      items,
      customerId,
      createdAt: sentAt,
      expiresAtMs: sentAt + ttlSeconds * 1000,
      heard,
      steps: [],
    });
    const attempts: string[] = [];
    for (let attempt = 1; attempt <= 5 && this.running; attempt++) {
      const sentAt = Date.now();
      const body = { ...(id ? { reservationId: id } : {}), items, ttlSeconds, ...(customerId ? { customerId } : {}) };
      this.requestsInFlight++;
      const a = await this.http
        .call('POST', '/v1/reservations', { op: 'reserve', cls: 'write', body, clientTimeoutMs: this.clientTimeout() })
        .finally(() => this.requestsInFlight--);
      attempts.push(
        `${new Date(sentAt).toISOString().slice(11, 23)} → ${new Date().toISOString().slice(11, 23)} ${String(a.outcome)} ${codeOf(a.body) ?? a.body?.status ?? ''}`.trim(),
      );
      if (a.outcome === 201 || a.outcome === 200) {
        const view = a.body as { reservationId: string; expiresAt: string; status: string };
        const r = tracked(view.reservationId, sentAt, view.status);
        if (attempts.length > 1) r.attempts = attempts;
        r.expiresAtMs = Date.parse(view.expiresAt) || r.expiresAtMs;
        if (view.status === 'HELD') {
          r.heldAt = Date.now();
          r.promisedUntilMs = Date.parse(view.expiresAt);
        }
        this.tracker.reservations.set(r.id, r);
        return r;
      }
      if (typeof a.outcome === 'number' && a.outcome >= 400 && a.outcome < 500) {
        if (id)
          this.tracker.reservations.set(id, {
            ...tracked(id, sentAt, `refused ${a.outcome} ${codeOf(a.body) ?? ''}`.trim()),
            attempts,
          });
        return undefined;
      }
      // 503, 5xx, no answer: the outcome is unknown.
      const named =
        a.outcome === 503 && typeof a.body?.error?.details?.reservationId === 'string'
          ? (a.body.error.details.reservationId as string)
          : undefined;
      if (id || named) {
        const known = id ?? named!;
        const r = this.tracker.reservations.get(known) ?? tracked(known, sentAt, `unknown ${String(a.outcome)}`);
        r.attempts = attempts;
        this.tracker.reservations.set(known, r);
      } else {
        this.tracker.bump(this.tracker.unknownOutcomes, phase);
      }
      await sleep(a.outcome === 503 ? 300 * attempt : a.outcome === 'conn-error' ? 700 : 50);
    }
    return undefined;
  }

  /** Sends an update (commit/cancel/extend), retrying 503s and lost answers; the last answer, written down as a step. */
  private async update(
    r: TrackedReservation,
    action: 'commit' | 'cancel' | 'extend',
    body: unknown,
    step: Partial<ClientStep> = {},
  ) {
    let last: Awaited<ReturnType<Http['call']>> | undefined;
    const sentAt = Date.now();
    let lastSentAt = sentAt;
    for (let attempt = 1; attempt <= 8; attempt++) {
      if (action === 'commit') this.commitsInFlight++;
      this.requestsInFlight++;
      lastSentAt = Date.now();
      last = await this.http
        .call('POST', `/v1/reservations/${r.id}/${action}`, {
          op: action,
          cls: 'write',
          body,
          clientTimeoutMs: this.clientTimeout(),
        })
        .finally(() => {
          this.requestsInFlight--;
          if (action === 'commit') this.commitsInFlight--;
        });
      if (typeof last.outcome === 'number' && last.outcome < 500) break;
      await sleep(last.outcome === 'conn-error' ? 700 : Math.min(400 * attempt, 3_000));
    }
    r.steps.push({
      action,
      sentAt,
      lastSentAt,
      at: Date.now(),
      outcome: last!.outcome,
      code: codeOf(last!.body),
      status: last!.outcome === 200 ? last!.body?.status : undefined,
      ...step,
    });
    return last!;
  }

  async commit(r: TrackedReservation, part: boolean): Promise<void> {
    const items = part
      ? r.items.map((l) => ({ sku: l.sku, quantity: int(0, l.quantity) })).filter((l) => l.quantity > 0)
      : undefined;
    const a = await this.update(r, 'commit', {
      paymentId: `pay-${r.id}`,
      ...(items && items.length > 0 ? { items } : {}),
    });
    if (a.outcome === 200 && a.body?.status === 'COMMITTED') {
      r.heard = 'COMMITTED';
      r.committedHeard = Object.fromEntries(
        (a.body.items as { sku: string; committedQuantity: number }[]).map((l) => [l.sku, l.committedQuantity]),
      );
    } else if (typeof a.outcome === 'number' && a.outcome >= 400 && a.outcome < 500) {
      r.heard = `${a.outcome} ${codeOf(a.body) ?? ''}`.trim();
    }
  }

  private async cancel(r: TrackedReservation): Promise<void> {
    const a = await this.update(r, 'cancel', { reason: 'changed my mind' });
    if (a.outcome === 200) r.heard = a.body?.status ?? r.heard;
  }

  private async extend(r: TrackedReservation): Promise<void> {
    const ttlS = int(...this.options.ttlS);
    const a = await this.update(r, 'extend', { ttlSeconds: ttlS }, { ttlS });
    const step = r.steps.at(-1)!;
    if (a.outcome === 200 && a.body?.expiresAt) {
      // The deadline the client was told last is the promise (an extend may shorten it).
      step.expiresAtMs = Date.parse(a.body.expiresAt);
      r.promisedUntilMs = step.expiresAtMs;
      r.expiresAtMs = Math.max(r.expiresAtMs, step.expiresAtMs);
    } else if (typeof a.outcome !== 'number' || a.outcome >= 500 || step.lastSentAt > step.sentAt) {
      // Lost, or refused only on a resend (409 RESERVATION_EXPIRED when the first attempt's
      // shorter TTL had run out meanwhile): it may have applied, from its first attempt on.
      r.promisedUntilMs = Math.min(r.promisedUntilMs ?? Infinity, step.sentAt + ttlS * 1000);
      r.expiresAtMs = Math.max(r.expiresAtMs, Date.now() + ttlS * 1000);
    }
  }

  /**
   * The payment service: a signal through Temporal (retried while Temporal is down), sometimes
   * twice. Each signal is written down with when Temporal accepted it (or why it did not).
   */
  private async pay(r: TrackedReservation, ok: boolean): Promise<void> {
    const twice = Math.random() < 0.3;
    const action = ok ? 'paymentSucceeded' : 'paymentFailed';
    for (let n = 0; n < (twice ? 2 : 1); n++) {
      const sentAt = Date.now();
      let lastSentAt = sentAt;
      let outcome: ClientStep['outcome'] = 'unknown';
      let code: string | undefined;
      for (let attempt = 1; attempt <= 10; attempt++) {
        lastSentAt = Date.now();
        try {
          const client = await this.temporal();
          const handle = client.workflow.getHandle(`reservation-${r.id}`);
          await client.withDeadline(Date.now() + 5_000, () =>
            ok
              ? handle.signal('paymentSucceeded', { paymentId: `pay-${r.id}` })
              : handle.signal('paymentFailed', { paymentId: `pay-${r.id}`, reason: 'card declined' }),
          );
          outcome = 'accepted';
          break;
        } catch (err) {
          const message = String((err as Error)?.message);
          if (/not found|already completed/i.test(message)) {
            outcome = 'refused';
            code = message.slice(0, 120);
            break;
          }
          await sleep(1_000);
        }
      }
      r.steps.push({ action, sentAt, lastSentAt, at: Date.now(), outcome, code });
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

  /** A shopper: a cart of 1–3 SKUs, most for a customer (always when the limited SKU is in it, as the contract requires). */
  private async shopper(): Promise<void> {
    const skus = this.skus!;
    const lines = int(1, 3);
    const chosen = [...skus.normal].sort(() => Math.random() - 0.5).slice(0, lines);
    const items = chosen.map((sku) => ({ sku, quantity: int(1, 3) }));
    const customerId = Math.random() < 0.7 || chosen.includes(skus.limited) ? pick(skus.customers) : undefined;
    const fate = pickFate();
    const ttl = fate === 'expire' ? int(...this.options.expireTtlS) : int(...this.options.ttlS);
    const r = await this.reserve(items, ttl, Math.random() < 0.8, customerId);
    if (r && r.heard === 'HELD') await this.settle(r, fate);
    else await sleep(int(200, 800));
  }

  /** A flash sale: a crowd on a SKU with little stock at once; the winners mostly buy. */
  private async storm(): Promise<void> {
    const skus = this.skus!;
    await sleep(int(1_000, this.options.stormEveryMs));
    if (!this.running) return;
    await this.crowd(skus.flash, this.options.stormSize);
    // Restock the flash SKU a little for the next storm (an admin write during the storm's tail).
    await this.http.call('POST', `/v1/skus/${skus.flash}/restock`, {
      op: 'restock',
      cls: 'write',
      admin: true,
      body: { quantity: int(3, 6), reason: 'next wave' },
      idempotencyKey: `flash-${randomUUID()}`,
    });
  }

  /**
   * `size` buyers of one unit of `sku` at once (half of them signed-in customers); the winners
   * mostly buy. Also what a fault sends while Redis loses holds of the SKU, so that Redis offers
   * units PostgreSQL still promises (faults.ts, redis-partial). Settles, never failing, when every
   * buyer is done, with how many heard HELD.
   */
  crowd(sku: string, size: number): Promise<{ held: number }> {
    const skus = this.skus!;
    let held = 0;
    const done = Promise.all(
      Array.from({ length: size }, async (_, i) => {
        const customerId = i % 2 === 0 ? pick(skus.customers) : undefined;
        const r = await this.reserve([{ sku, quantity: 1 }], int(...this.options.ttlS), true, customerId);
        if (!r || r.heard !== 'HELD') return;
        held += 1;
        const roll = Math.random();
        await this.settle(r, roll < 0.6 ? 'commit' : roll < 0.75 ? 'pay-ok' : roll < 0.88 ? 'cancel' : 'expire');
      }),
    ).then(
      () => ({ held }),
      () => ({ held }),
    );
    this.loops.push(done.then(() => undefined));
    return done;
  }

  // ------------------------------------------------------------------ admin and readers

  /** The stock clerk: restocks, adjustments (some refused as WOULD_OVERSELL), returns of sold units. */
  private async clerk(): Promise<void> {
    await sleep(this.options.adminEveryMs);
    const skus = this.skus!;
    const roll = Math.random();
    const at = (sku: string) => (skus.spread.includes(sku) ? { locationId: pick(['default', skus.warehouse]) } : {});
    if (roll < 0.1) {
      // A transfer between the spread SKUs' two locations (refused when `from` is short: fine).
      const from = Math.random() < 0.5 ? 'default' : skus.warehouse;
      await this.http.call('POST', `/v1/skus/${pick(skus.spread)}/transfers`, {
        op: 'transfer',
        cls: 'write',
        admin: true,
        body: { from, to: from === 'default' ? skus.warehouse : 'default', quantity: int(1, 3) },
        idempotencyKey: `transfer-${randomUUID()}`,
      });
    } else if (roll < 0.35) {
      const key = Math.random() < 0.5 ? `restock-${randomUUID()}` : undefined;
      const sku = pick(skus.normal);
      const body = { quantity: int(1, 5), reason: 'delivery', ...at(sku) };
      await this.http.call('POST', `/v1/skus/${sku}/restock`, {
        op: 'restock',
        cls: 'write',
        admin: true,
        body,
        idempotencyKey: key,
      });
      if (key && Math.random() < 0.5)
        await this.http.call('POST', `/v1/skus/${sku}/restock`, {
          op: 'restock',
          cls: 'write',
          admin: true,
          body,
          idempotencyKey: key,
        });
    } else if (roll < 0.6) {
      const delta = Math.random() < 0.5 ? -int(1, 3) : int(1, 3);
      const sku = pick(skus.normal);
      await this.http.call('POST', `/v1/skus/${sku}/adjustments`, {
        op: 'adjust',
        cls: 'write',
        admin: true,
        body: { delta, reason: 'stock count', ...at(sku) },
        idempotencyKey: `adjust-${randomUUID()}`,
      });
    } else if (roll < 0.85) {
      const sold = [...this.tracker.reservations.values()].filter(
        (r) => r.committedHeard && Object.values(r.committedHeard).some((q) => q > 0),
      );
      if (sold.length === 0) return;
      const r = pick(sold.slice(-50));
      const [sku] = Object.entries(r.committedHeard!).find(([, q]) => q > 0)!;
      await this.http.call('POST', '/v1/returns', {
        op: 'return',
        cls: 'write',
        admin: true,
        body: { reservationId: r.id, items: [{ sku, quantity: 1 }], reason: 'damaged' },
        idempotencyKey: `return-${randomUUID()}`,
      });
    } else {
      const sku = pick([...skus.normal, skus.flash]);
      await this.http.call('GET', `/v1/skus/${sku}/${Math.random() < 0.5 ? 'holds' : 'movements?limit=20'}`, {
        op: 'admin-read',
        cls: 'read',
        admin: true,
      });
    }
  }

  /** Product pages and order pages: availability, one SKU, one reservation. */
  private async reader(): Promise<void> {
    await sleep(int(80, 250));
    const skus = this.skus!;
    const roll = Math.random();
    if (roll < 0.5) {
      await this.http.call('GET', `/v1/availability?skus=${[...skus.normal, skus.flash].join(',')}`, {
        op: 'availability',
        cls: 'read',
      });
    } else if (roll < 0.8) {
      await this.http.call('GET', `/v1/skus/${pick([...skus.normal, skus.flash])}`, { op: 'get-sku', cls: 'read' });
    } else {
      const recent = [...this.tracker.reservations.values()].slice(-100);
      if (recent.length === 0) return;
      await this.http.call('GET', `/v1/reservations/${pick(recent).id}`, { op: 'get-reservation', cls: 'read' });
    }
  }
}
