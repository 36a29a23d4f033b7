/**
 * The invariants (DESIGN.md), checked from the stores themselves, never through the API:
 * PostgreSQL (the source of truth), Redis (the hot counters) and Temporal (the running workflows).
 * What clients were told is judged against them in promises.ts.
 *
 * - Oversell: Redis `available = total - reserved` sampled every 250 ms during the run (Sampler),
 *   PostgreSQL `skus.total` never negative, and PostgreSQL's promises (`skus.reserved` and the
 *   HELD lines) never above its `total` (invariant 1a: a unit is promised to one buyer at a time),
 *   sampled every 500 ms.
 * - Sales: every COMMITTED reservation has exactly one `sale` movement per line with a committed
 *   quantity (of that quantity), no sale belongs to anything else, and every 200 COMMITTED a
 *   client heard is COMMITTED in PostgreSQL with the quantities it heard.
 * - Drift (only meaningful when nothing is in flight): per SKU, Redis `total` = PostgreSQL `total`
 *   = the ledger's sum; Redis `reserved` = sum of the holds hash = sum of HELD lines = PostgreSQL's
 *   own `skus.reserved`; every hold is a HELD line's and vice versa; the per-customer counts (h:,
 *   o:, b:) are PostgreSQL's; every reservation finished since Redis last lost data has its `done`
 *   tombstone, and no HELD one has one.
 * - Wedged: a reservation still HELD/PENDING in PostgreSQL, or Running in Temporal, once its
 *   deadline has passed by more than the allowed slack.
 * - The reconciler's own counts (reconciler_counts), read before and after a phase.
 */
import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { keys } from '../../src/stock';
import { sleep } from './procs';
import type { TrackedReservation, Tracker } from './workload';

// ---------------------------------------------------------------- sampling during the run

/**
 * Samples Redis's counters of every SKU of the run, recording any negative `available` per phase,
 * and PostgreSQL's promises of the current phase's SKUs, recording any above `total`.
 */
export class Sampler {
  /** Per phase: units by which `available` went below zero at worst, per SKU. */
  readonly negative = new Map<string, Map<string, number>>();
  /** Per phase: units by which PostgreSQL promised more than its `total` at worst (`skus.reserved` or the HELD lines), per SKU. */
  readonly overpromised = new Map<string, Map<string, number>>();
  samples = 0;
  failedSamples = 0;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly db: Pool,
    private readonly tracker: Tracker,
    private readonly phase: () => string,
  ) {}

  start(): void {
    this.running = true;
    const every = async (ms: number, sample: () => Promise<void>) => {
      while (this.running) {
        await sample();
        await sleep(ms);
      }
    };
    this.loops = [every(250, () => this.sampleOnce()), every(500, () => this.samplePromises())];
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** PostgreSQL's promises against its stock: never more units HELD than `total` (invariant 1a). */
  private async samplePromises(): Promise<void> {
    const phase = this.phase();
    const skus = this.tracker.skusOf(phase);
    if (skus.length === 0) return;
    try {
      const rows = await this.db.query<{ sku: string; total: string; reserved: string; held: string }>(
        `SELECT s.sku, s.total, s.reserved, COALESCE(h.held, 0) AS held FROM skus s
           LEFT JOIN (SELECT l.sku, sum(l.quantity) AS held FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
                       WHERE r.status = 'HELD' AND l.sku = ANY($1::text[]) GROUP BY l.sku) h ON h.sku = s.sku
          WHERE s.sku = ANY($1::text[]) AND (s.reserved > s.total OR COALESCE(h.held, 0) > s.total)`,
        [skus],
      );
      for (const row of rows.rows) {
        const over = Math.max(Number(row.reserved), Number(row.held)) - Number(row.total);
        let m = this.overpromised.get(phase);
        if (!m) this.overpromised.set(phase, (m = new Map()));
        m.set(row.sku, Math.max(m.get(row.sku) ?? 0, over));
      }
    } catch {
      this.failedSamples++; // PostgreSQL down (a crash on purpose): nothing to read
    }
  }

  overpromisedUnits(phase: string): number {
    return [...(this.overpromised.get(phase)?.values() ?? [])].reduce((a, b) => a + b, 0);
  }

  private async sampleOnce(): Promise<void> {
    const skus = this.tracker.allSkus();
    if (skus.length === 0) return;
    const phase = this.phase();
    try {
      const pipeline = this.redis.pipeline();
      for (const sku of skus) pipeline.hmget(keys.stock(sku), 'total', 'reserved');
      const replies = (await pipeline.exec()) ?? [];
      this.samples++;
      replies.forEach(([err, value], i) => {
        if (err || !value) return;
        const [total, reserved] = value as (string | null)[];
        if (total === null || total === undefined) return;
        const available = Number(total) - Number(reserved ?? 0);
        if (available < 0) {
          let m = this.negative.get(phase);
          if (!m) this.negative.set(phase, (m = new Map()));
          m.set(skus[i]!, Math.max(m.get(skus[i]!) ?? 0, -available));
        }
      });
    } catch {
      this.failedSamples++; // frozen or restarting: nothing to read
    }
  }

  oversoldUnits(phase: string): number {
    return [...(this.negative.get(phase)?.values() ?? [])].reduce((a, b) => a + b, 0);
  }
}

// ---------------------------------------------------------------- drift

export interface SkuDrift {
  sku: string;
  redisTotal: number | null;
  pgTotal: number;
  redisReserved: number | null;
  sumOfHolds: number;
  pgHeld: number;
  /** PostgreSQL's own `skus.reserved`: what threshold events and the stock gauges read. */
  pgReserved: number;
  ledgerSum: number;
  /** Hold ids in Redis without a HELD line (of a finished reservation, or of none), and HELD lines without a hold. */
  strayHolds: number;
  missingHolds: number;
  /** Per-customer fields of item:{SKU}:customers that differ from PostgreSQL's ("h:cust-3 Redis 2, PostgreSQL 3"). */
  customers: string[];
  /** Reservations finished since Redis last lost this SKU's data without their `done` tombstone; HELD ones with one. */
  tombstonesMissing: number;
  tombstonedHeld: number;
  /** Contract v3: each location's figures and each hold's allocation that differ between the stores ("WH t Redis 3, PostgreSQL 4"). */
  levels: string[];
  /** Units apart, plus one for each wrong per-customer field or tombstone. */
  units: number;
}

/** `drift` of one SKU in a sentence (for failures). */
export function describeDrift(d: SkuDrift): string {
  const parts = [
    `Redis total ${d.redisTotal} vs PG ${d.pgTotal} (ledger ${d.ledgerSum})`,
    `reserved ${d.redisReserved}, holds ${d.sumOfHolds}, HELD lines ${d.pgHeld}, skus.reserved ${d.pgReserved}`,
    ...(d.strayHolds || d.missingHolds
      ? [`${d.strayHolds} holds without a HELD line, ${d.missingHolds} HELD lines without a hold`]
      : []),
    ...(d.customers.length
      ? [
          `customers: ${d.customers.slice(0, 3).join('; ')}${d.customers.length > 3 ? ` (+${d.customers.length - 3})` : ''}`,
        ]
      : []),
    ...(d.tombstonesMissing || d.tombstonedHeld
      ? [`done: ${d.tombstonesMissing} finished without a tombstone, ${d.tombstonedHeld} HELD with one`]
      : []),
    ...(d.levels.length ? [`levels: ${d.levels.slice(0, 3).join('; ')}`] : []),
  ];
  return `${d.sku}: ${parts.join('; ')}`;
}

/**
 * Per-SKU comparison of Redis with PostgreSQL for `skus`; only SKUs that differ are returned.
 * `lostAt(sku)` is when Redis last lost that SKU's data (a partial loss; a wipe counts from when
 * Redis was loaded again): the tombstones of reservations finished before then went with it, so
 * only those finished later must have theirs.
 */
export async function drift(
  db: Pool,
  redis: Redis,
  skus: string[],
  lostAt: (sku: string) => number = () => 0,
): Promise<SkuDrift[]> {
  if (skus.length === 0) return [];
  const pg = await db.query<{
    sku: string;
    total: string;
    reserved: string;
    max_per_customer: number | null;
    ledger: string;
  }>(
    `SELECT s.sku, s.total, s.reserved, s.max_per_customer, COALESCE((SELECT SUM(delta) FROM stock_movements m WHERE m.sku = s.sku), 0) AS ledger
       FROM skus s WHERE s.sku = ANY($1::text[])`,
    [skus],
  );
  const held = await db.query<{ sku: string; reservation_id: string; quantity: number; customer_id: string | null }>(
    `SELECT l.sku, l.reservation_id, l.quantity, r.customer_id FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
      WHERE r.status = 'HELD' AND l.sku = ANY($1::text[])`,
    [skus],
  );
  // What each customer bought (sold minus returned) of each SKU: the b: fields of a limited SKU.
  const bought = await db.query<{ sku: string; customer_id: string; bought: string }>(
    `SELECT m.sku, r.customer_id, -sum(m.delta) AS bought FROM stock_movements m JOIN reservations r ON r.id = m.reservation_id
      WHERE m.sku = ANY($1::text[]) AND m.kind IN ('sale', 'return') AND r.customer_id IS NOT NULL
      GROUP BY m.sku, r.customer_id HAVING sum(m.delta) <> 0`,
    [skus],
  );
  const finished = await db.query<{ sku: string; reservation_id: string; updated_at: Date }>(
    `SELECT l.sku, l.reservation_id, r.updated_at FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
      WHERE r.status IN ('COMMITTED', 'CANCELLED', 'EXPIRED') AND l.sku = ANY($1::text[])`,
    [skus],
  );
  // Contract v3: each level, and each HELD line's allocation (`loc=units,…` in the order taken).
  const levels = await db.query<{ sku: string; location_id: string; total: string; reserved: string }>(
    'SELECT sku, location_id, total, reserved FROM stock_levels WHERE sku = ANY($1::text[])',
    [skus],
  );
  const allocations = await db.query<{ sku: string; reservation_id: string; allocation: string }>(
    `SELECT a.sku, a.reservation_id, string_agg(a.location_id || '=' || a.quantity, ',' ORDER BY a.position) AS allocation
       FROM reservation_allocations a JOIN reservations r ON r.id = a.reservation_id AND r.status = 'HELD'
      WHERE a.sku = ANY($1::text[]) GROUP BY a.sku, a.reservation_id`,
    [skus],
  );
  const group = <T extends { sku: string }>(rows: T[]) => {
    const bySku = new Map<string, T[]>();
    for (const row of rows) bySku.set(row.sku, [...(bySku.get(row.sku) ?? []), row]);
    return bySku;
  };
  const heldBySku = group(held.rows);
  const boughtBySku = group(bought.rows);
  const finishedBySku = group(finished.rows);
  const levelsBySku = group(levels.rows);
  const allocationsBySku = group(allocations.rows);
  const pipeline = redis.pipeline();
  pipeline.get(keys.loaded);
  for (const row of pg.rows) {
    pipeline.hgetall(keys.stock(row.sku));
    pipeline.hgetall(keys.holds(row.sku));
    pipeline.hgetall(keys.customers(row.sku));
    pipeline.zrange(keys.done(row.sku), 0, -1);
  }
  const replies = (await pipeline.exec()) ?? [];
  const [markerError, marker] = replies.shift() ?? [new Error('no reply'), null];
  if (markerError) throw markerError;
  // After a full loss the rebuild loads counters and holds from a PostgreSQL snapshot, never the
  // tombstones: those of reservations finished before Redis was loaded again (the marker's time)
  // are gone for good (a commit replayed onto rebuilt counters finds nothing left to do).
  const loadedAt = typeof marker === 'string' ? Date.parse(marker) || 0 : 0;
  const out: SkuDrift[] = [];
  pg.rows.forEach((row, i) => {
    const reply = (k: number) => {
      const [err, value] = replies[4 * i + k] ?? [new Error('no reply'), null];
      if (err) throw err;
      return value;
    };
    const stockHash = reply(0) as Record<string, string>;
    const [total, reserved, maxPerCustomer] = [stockHash.total, stockHash.reserved, stockHash.maxPerCustomer];
    const holdMap = reply(1) as Record<string, string>;
    const customers = reply(2) as Record<string, string>;
    const done = new Set(reply(3) as string[]);
    const pgHolds = new Map((heldBySku.get(row.sku) ?? []).map((h) => [h.reservation_id, h]));
    const sumOfHolds = Object.values(holdMap).reduce((n, q) => n + Number(q), 0);
    const pgHeld = [...pgHolds.values()].reduce((n, h) => n + h.quantity, 0);

    // Per-customer counts, as PostgreSQL has them: h: the units each customer holds, o: each
    // hold's customer (holds naming one), b: what each bought, only on a SKU limited in Redis.
    const want = new Map<string, string>();
    for (const h of pgHolds.values()) {
      if (!h.customer_id) continue;
      want.set(`o:${h.reservation_id}`, h.customer_id);
      want.set(`h:${h.customer_id}`, String(Number(want.get(`h:${h.customer_id}`) ?? 0) + h.quantity));
    }
    const limitedInRedis = maxPerCustomer !== null && maxPerCustomer !== undefined;
    if (limitedInRedis)
      for (const b of boughtBySku.get(row.sku) ?? []) want.set(`b:${b.customer_id}`, String(Number(b.bought)));
    const customerDiffs: string[] = [];
    let customerUnits = 0;
    for (const field of new Set([...want.keys(), ...Object.keys(customers)])) {
      if (field.startsWith('b:') && !limitedInRedis) continue;
      const [have, should] = [customers[field], want.get(field)];
      if (have === should) continue;
      customerDiffs.push(`${field} Redis ${have ?? 'none'}, PostgreSQL ${should ?? 'none'}`);
      customerUnits += field.startsWith('o:') ? 1 : Math.abs(Number(have ?? 0) - Number(should ?? 0)) || 1;
    }
    const pgLimit = row.max_per_customer === null ? null : String(row.max_per_customer);
    if ((maxPerCustomer ?? null) !== pgLimit) {
      customerDiffs.push(`maxPerCustomer Redis ${maxPerCustomer ?? 'none'}, PostgreSQL ${pgLimit ?? 'none'}`);
      customerUnits += 1;
    }

    const since = Math.max(lostAt(row.sku), loadedAt);
    const tombstonesMissing = (finishedBySku.get(row.sku) ?? []).filter(
      (f) => f.updated_at.getTime() > since && !done.has(f.reservation_id),
    ).length;
    const tombstonedHeld = [...pgHolds.keys()].filter((id) => done.has(id)).length;

    // Levels (lua/includes/levels.lua): without `locs` Redis has one level, `default`.
    const levelDiffs: string[] = [];
    let levelUnits = 0;
    if (total !== undefined) {
      const pgLevels = levelsBySku.get(row.sku) ?? [];
      const redisLevel = (loc: string): [number, number] =>
        stockHash.locs === undefined
          ? loc === 'default'
            ? [Number(total), Number(reserved ?? 0)]
            : [0, 0]
          : [Number(stockHash[`t:${loc}`] ?? 0), Number(stockHash[`r:${loc}`] ?? 0)];
      const locs = new Set([...pgLevels.map((l) => l.location_id), ...(stockHash.locs?.split(',') ?? [])]);
      for (const loc of locs) {
        const pgLevel = pgLevels.find((l) => l.location_id === loc);
        const [t, r] = redisLevel(loc);
        const [pt, pr] = [Number(pgLevel?.total ?? 0), Number(pgLevel?.reserved ?? 0)];
        if (t !== pt) levelDiffs.push(`${loc} total Redis ${t}, PostgreSQL ${pt}`);
        if (r !== pr) levelDiffs.push(`${loc} reserved Redis ${r}, PostgreSQL ${pr}`);
        levelUnits += Math.abs(t - pt) + Math.abs(r - pr);
      }
      for (const a of allocationsBySku.get(row.sku) ?? []) {
        const held = holdMap[a.reservation_id];
        if (held === undefined) continue; // a missing hold is counted already
        const inRedis = stockHash[`a:${a.reservation_id}`] ?? `default=${held}`;
        if (inRedis !== a.allocation) {
          levelDiffs.push(`${a.reservation_id} allocated Redis ${inRedis}, PostgreSQL ${a.allocation}`);
          levelUnits += 1;
        }
      }
    }

    const d: SkuDrift = {
      sku: row.sku,
      redisTotal: total === null || total === undefined ? null : Number(total),
      pgTotal: Number(row.total),
      redisReserved: reserved === null || reserved === undefined ? null : Number(reserved),
      sumOfHolds,
      pgHeld,
      pgReserved: Number(row.reserved),
      ledgerSum: Number(row.ledger),
      strayHolds: Object.keys(holdMap).filter((id) => !pgHolds.has(id)).length,
      missingHolds: [...pgHolds.keys()].filter((id) => !(id in holdMap)).length,
      customers: customerDiffs,
      tombstonesMissing,
      tombstonedHeld,
      levels: levelDiffs,
      units: 0,
    };
    // A SKU missing from Redis altogether drifts by all of its figures.
    d.units =
      Math.abs((d.redisTotal ?? 0) - d.pgTotal) +
      (d.redisTotal === null ? 1 : 0) +
      Math.abs((d.redisReserved ?? 0) - sumOfHolds) +
      Math.abs(sumOfHolds - pgHeld) +
      Math.abs(d.pgReserved - pgHeld) +
      Math.abs(d.ledgerSum - d.pgTotal) +
      customerUnits +
      tombstonesMissing +
      tombstonedHeld +
      levelUnits;
    if (d.units > 0 || d.strayHolds > 0 || d.missingHolds > 0) out.push(d);
  });
  return out;
}

// ---------------------------------------------------------------- the reconciler's counts

/** reconciler_counts as it is now: repairs by kind, and alerts as `unexplained:<kind>`. */
export async function reconcilerCounts(db: Pool): Promise<Map<string, number>> {
  const rows = await db.query<{ kind: string; count: string }>('SELECT kind, count FROM reconciler_counts');
  return new Map(rows.rows.map((r) => [r.kind, Number(r.count)]));
}

/** What grew between two readings, by kind (kinds that did not grow left out). */
export function countsGrown(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [kind, n] of after) if (n > (before.get(kind) ?? 0)) out[kind] = n - (before.get(kind) ?? 0);
  return out;
}

// ---------------------------------------------------------------- sales

export interface SalesFindings {
  /** COMMITTED lines with a committed quantity but no sale movement (or a smaller one). */
  lost: string[];
  /** Lines with two sales at one location, sales larger than committed, or sales of non-COMMITTED reservations. */
  doubled: string[];
  /** 200 COMMITTED answers whose reservation PostgreSQL does not have as COMMITTED (or with other quantities). */
  heardNotCommitted: string[];
  /** Temporal says COMMITTED (search attribute), PostgreSQL does not. */
  temporalNotPg: string[];
  negativeTotals: string[];
}

export async function sales(
  db: Pool,
  tracker: Tracker,
  phase: string | undefined,
  temporal?: Client,
): Promise<SalesFindings> {
  const lines = await db.query<{
    reservation_id: string;
    sku: string;
    committed_quantity: number;
    n: string;
    places: string;
    d: string;
  }>(
    // One sale per sold line and location it sold from (contract v3: a split line sells from each).
    `SELECT l.reservation_id, l.sku, l.committed_quantity, COUNT(m.id) AS n, COUNT(DISTINCT m.location_id) AS places,
            COALESCE(SUM(m.delta), 0) AS d
       FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
       LEFT JOIN stock_movements m ON m.reservation_id = l.reservation_id AND m.sku = l.sku AND m.kind = 'sale'
      WHERE r.status = 'COMMITTED'
      GROUP BY l.reservation_id, l.sku, l.committed_quantity
     HAVING COUNT(m.id) <> COUNT(DISTINCT m.location_id) OR COALESCE(SUM(m.delta), 0) <> -l.committed_quantity`,
  );
  const inPhase = (id: string) =>
    phase === undefined ||
    tracker.reservations.get(id)?.phase === phase ||
    (!tracker.reservations.has(id) && phase === '*');
  const lost: string[] = [];
  const doubled: string[] = [];
  for (const row of lines.rows) {
    if (!inPhase(row.reservation_id)) continue;
    const text = `${row.reservation_id}/${row.sku}: committed ${row.committed_quantity}, ${row.n} sale(s) of ${-Number(row.d)}`;
    if (Number(row.n) > Number(row.places) || -Number(row.d) > row.committed_quantity) doubled.push(text);
    else lost.push(text);
  }
  const stray = await db.query<{ reservation_id: string; sku: string; status: string }>(
    `SELECT m.reservation_id, m.sku, r.status FROM stock_movements m LEFT JOIN reservations r ON r.id = m.reservation_id
      WHERE m.kind = 'sale' AND (r.status IS DISTINCT FROM 'COMMITTED')`,
  );
  for (const row of stray.rows)
    if (inPhase(row.reservation_id))
      doubled.push(`${row.reservation_id}/${row.sku}: a sale of a ${row.status ?? 'missing'} reservation`);

  const heard = [...tracker.reservations.values()].filter(
    (r) => r.committedHeard && (phase === undefined || r.phase === phase),
  );
  const heardNotCommitted: string[] = [];
  if (heard.length > 0) {
    const rows = await db.query<{ id: string; status: string; sku: string | null; committed_quantity: number | null }>(
      `SELECT r.id, r.status, l.sku, l.committed_quantity FROM reservations r LEFT JOIN reservation_lines l ON l.reservation_id = r.id WHERE r.id = ANY($1::text[])`,
      [heard.map((r) => r.id)],
    );
    const byId = new Map<string, { status: string; lines: Map<string, number> }>();
    for (const row of rows.rows) {
      const e = byId.get(row.id) ?? { status: row.status, lines: new Map<string, number>() };
      if (row.sku) e.lines.set(row.sku, row.committed_quantity ?? 0);
      byId.set(row.id, e);
    }
    for (const r of heard) {
      const pg = byId.get(r.id);
      if (!pg || pg.status !== 'COMMITTED') {
        heardNotCommitted.push(`${r.id}: client heard 200 COMMITTED, PostgreSQL has ${pg?.status ?? 'no row'}`);
        continue;
      }
      for (const [sku, q] of Object.entries(r.committedHeard!)) {
        if ((pg.lines.get(sku) ?? 0) !== q)
          heardNotCommitted.push(`${r.id}/${sku}: client heard ${q} sold, PostgreSQL has ${pg.lines.get(sku) ?? 0}`);
      }
    }
  }

  const temporalNotPg: string[] = [];
  if (temporal) {
    const ids: string[] = [];
    try {
      for await (const wf of temporal.workflow.list({
        query: `WorkflowType = 'reservationWorkflow' AND ReservationStatus = 'COMMITTED'`,
      })) {
        ids.push(wf.workflowId.replace(/^reservation-/, ''));
      }
      const rows = await db.query<{ id: string; status: string }>(
        `SELECT id, status FROM reservations WHERE id = ANY($1::text[])`,
        [ids],
      );
      const status = new Map(rows.rows.map((r) => [r.id, r.status]));
      for (const id of ids) {
        if (status.get(id) !== 'COMMITTED' && inPhase(id))
          temporalNotPg.push(`${id}: Temporal COMMITTED, PostgreSQL ${status.get(id) ?? 'no row'}`);
      }
    } catch {
      // Temporal unreachable: this part is skipped (the next check repeats it)
    }
  }
  const negative = await db.query<{ sku: string; total: string }>('SELECT sku, total FROM skus WHERE total < 0');
  return {
    lost,
    doubled,
    heardNotCommitted,
    temporalNotPg,
    negativeTotals: negative.rows.map((r) => `${r.sku}: total ${r.total}`),
  };
}

// ---------------------------------------------------------------- wedged reservations

export interface Wedged {
  id: string;
  /** Where it is not final: HELD/PENDING in PostgreSQL, Running in Temporal, or both. */
  where: string;
  status: string;
  overdueS: number;
}

/** One entry per reservation (a reservation stuck in both stores is one wedged reservation). */
function merged(found: Wedged[]): Wedged[] {
  const byId = new Map<string, Wedged>();
  for (const w of found) {
    const seen = byId.get(w.id);
    if (!seen) byId.set(w.id, { ...w });
    else {
      seen.where = `${seen.where} + ${w.where}`;
      seen.status = `${seen.status} / ${w.status}`;
      seen.overdueS = Math.max(seen.overdueS, w.overdueS);
    }
  }
  return [...byId.values()];
}

/**
 * Reservations not final once `slackMs` past their deadline: HELD/PENDING rows in PostgreSQL, and
 * reservation workflows still Running in Temporal (their deadline from PostgreSQL, else from what
 * the client was told, else 30 s after the workflow started).
 */
export async function wedged(
  db: Pool,
  temporal: Client | undefined,
  tracker: Tracker,
  slackMs: number,
): Promise<{ wedged: Wedged[]; temporalUnreachable: boolean }> {
  const now = Date.now();
  const out: Wedged[] = [];
  const rows = await db.query<{ id: string; status: string; expires_at: Date }>(
    `SELECT id, status, expires_at FROM reservations WHERE status IN ('HELD', 'PENDING')`,
  );
  for (const row of rows.rows) {
    const overdue = now - row.expires_at.getTime() - slackMs;
    if (overdue > 0)
      out.push({ id: row.id, where: 'postgres', status: row.status, overdueS: Math.round(overdue / 1000) });
  }
  let temporalUnreachable = false;
  if (temporal) {
    try {
      const running: { id: string; start: number }[] = [];
      for await (const wf of temporal.workflow.list({
        query: `WorkflowType = 'reservationWorkflow' AND ExecutionStatus = 'Running'`,
      })) {
        running.push({ id: wf.workflowId.replace(/^reservation-/, ''), start: wf.startTime.getTime() });
      }
      const deadlines = running.length
        ? new Map(
            (
              await db.query<{ id: string; expires_at: Date }>(
                'SELECT id, expires_at FROM reservations WHERE id = ANY($1::text[])',
                [running.map((r) => r.id)],
              )
            ).rows.map((r) => [r.id, r.expires_at.getTime()]),
          )
        : new Map<string, number>();
      for (const wf of running) {
        const deadline = deadlines.get(wf.id) ?? tracker.reservations.get(wf.id)?.expiresAtMs ?? wf.start + 30_000;
        const overdue = now - deadline - slackMs;
        if (overdue > 0)
          out.push({ id: wf.id, where: 'temporal', status: 'Running', overdueS: Math.round(overdue / 1000) });
      }
    } catch {
      temporalUnreachable = true;
    }
  }
  return { wedged: merged(out), temporalUnreachable };
}

// ---------------------------------------------------------------- evidence

/**
 * What the stores say about one reservation that broke an invariant, for the report: its row and
 * lines in PostgreSQL, its holds in Redis, in Temporal its status, the workflow's own view (a
 * query), pending activities (with their attempts and last failure) and its history (each event
 * with its time: which activity, signal or update, and why a task failed), and what its clients
 * asked and heard. A developer reads this instead of a stack that is gone by then.
 */
export async function evidence(
  db: Pool,
  redis: Redis,
  temporal: Client | undefined,
  id: string,
  tracked?: TrackedReservation,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { id };
  if (tracked)
    out.clients = {
      heard: tracked.heard,
      heldAt: tracked.heldAt && new Date(tracked.heldAt).toISOString(),
      promisedUntil: tracked.promisedUntilMs && new Date(tracked.promisedUntilMs).toISOString(),
      attempts: tracked.attempts,
      steps: tracked.steps,
    };
  try {
    const row = (
      await db.query('SELECT status, reason, expires_at, created_at, updated_at FROM reservations WHERE id = $1', [id])
    ).rows[0];
    const lines = (
      await db.query(
        'SELECT sku, quantity, committed_quantity, returned_quantity FROM reservation_lines WHERE reservation_id = $1',
        [id],
      )
    ).rows;
    const sales = (
      await db.query(`SELECT sku, delta, at FROM stock_movements WHERE reservation_id = $1 AND kind = 'sale'`, [id])
    ).rows;
    out.postgres = row ? { ...row, lines, sales } : 'no row';
    const skus = lines.map((l: { sku: string }) => l.sku);
    out.redisHolds = Object.fromEntries(
      await Promise.all(skus.map(async (sku: string) => [sku, await redis.hget(keys.holds(sku), id)])),
    );
  } catch (err) {
    out.postgres = `unreadable: ${String(err)}`;
  }
  if (temporal) {
    try {
      const handle = temporal.workflow.getHandle(`reservation-${id}`);
      const d = await handle.describe();
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const raw = d.raw as any;
      out.temporal = {
        status: d.status.name,
        historyLength: d.historyLength,
        view: await handle.query<{ status: string; expiresAt: string; updatedAt: string }>('getReservation').then(
          (v) => ({ status: v.status, expiresAt: v.expiresAt, updatedAt: v.updatedAt }),
          (err: unknown) => `no answer: ${String(err).slice(0, 120)}`,
        ),
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        pendingActivities: (raw.pendingActivities ?? []).map((a: any) => ({
          type: a.activityType?.name,
          attempt: a.attempt,
          state: a.state,
          lastFailure: a.lastFailure?.message,
        })),
        pendingWorkflowTask: raw.pendingWorkflowTask
          ? { attempt: raw.pendingWorkflowTask.attempt, state: raw.pendingWorkflowTask.state }
          : null,
      };
      const history = await handle.fetchHistory();
      out.history = (history.events ?? []).slice(-60).map((e) => {
        const attr = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k]);
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        const body = attr ? ((e as Record<string, any>)[attr] as Record<string, any>) : {};
        const detail =
          body.failure?.message ??
          body.activityType?.name ??
          body.signalName ??
          body.markerName ??
          body.acceptedRequest?.input?.name ??
          body.request?.input?.name ??
          (body.cause !== undefined ? `cause ${body.cause}` : undefined) ??
          (body.timeoutType !== undefined ? `timeout ${body.timeoutType}` : undefined) ??
          '';
        const name = attr?.replace(/EventAttributes$/, '') ?? '?';
        const seconds = Number(e.eventTime?.seconds ?? 0);
        const at = seconds
          ? new Date(seconds * 1000 + Math.floor(Number(e.eventTime?.nanos ?? 0) / 1e6)).toISOString().slice(11, 23)
          : '';
        return `${Number(e.eventId)} ${at} ${name}${detail ? `: ${String(detail).slice(0, 200)}` : ''}`;
      });
    } catch (err) {
      out.temporal = `unreadable: ${String(err).slice(0, 300)}`;
    }
  }
  return out;
}
