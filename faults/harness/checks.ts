/**
 * The invariants (DESIGN.md), checked from the stores themselves, never through the API:
 * PostgreSQL (the source of truth), Redis (the hot counters) and Temporal (the running workflows).
 *
 * - Oversell: Redis `available = total - reserved` sampled every 250 ms during the run (Sampler),
 *   and PostgreSQL `skus.total`, never negative.
 * - Sales: every COMMITTED reservation has exactly one `sale` movement per line with a committed
 *   quantity (of that quantity), no sale belongs to anything else, and every 200 COMMITTED a
 *   client heard is COMMITTED in PostgreSQL with the quantities it heard.
 * - Drift (only meaningful when nothing is in flight): per SKU, Redis `total` = PostgreSQL `total`,
 *   Redis `reserved` = sum of the holds hash = sum of HELD rows.
 * - Wedged: a reservation still HELD/PENDING in PostgreSQL, or Running in Temporal, once its
 *   deadline has passed by more than the allowed slack.
 */
import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { keys } from '../../src/stock';
import { sleep } from './procs';
import type { Tracker } from './workload';

// ---------------------------------------------------------------- sampling during the run

/** Samples Redis's counters of every SKU of the run, recording any negative `available` per phase. */
export class Sampler {
  /** Per phase: units by which `available` went below zero at worst, per SKU. */
  readonly negative = new Map<string, Map<string, number>>();
  samples = 0;
  failedSamples = 0;
  private running = false;
  private loop?: Promise<void>;

  constructor(
    private readonly redis: Redis,
    private readonly tracker: Tracker,
    private readonly phase: () => string,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        await this.sampleOnce();
        await sleep(250);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
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
  ledgerSum: number;
  /** Hold ids in Redis without a HELD row, and HELD rows without a hold. */
  strayHolds: number;
  missingHolds: number;
  units: number;
}

/** Per-SKU comparison of Redis with PostgreSQL for `skus`; only SKUs that differ are returned. */
export async function drift(db: Pool, redis: Redis, skus: string[]): Promise<SkuDrift[]> {
  if (skus.length === 0) return [];
  const pg = await db.query<{ sku: string; total: string; ledger: string }>(
    `SELECT s.sku, s.total, COALESCE((SELECT SUM(delta) FROM stock_movements m WHERE m.sku = s.sku), 0) AS ledger
       FROM skus s WHERE s.sku = ANY($1::text[])`,
    [skus],
  );
  const held = await db.query<{ sku: string; reservation_id: string; quantity: number }>(
    `SELECT l.sku, l.reservation_id, l.quantity FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
      WHERE r.status = 'HELD' AND l.sku = ANY($1::text[])`,
    [skus],
  );
  const heldBySku = new Map<string, Map<string, number>>();
  for (const row of held.rows) {
    let m = heldBySku.get(row.sku);
    if (!m) heldBySku.set(row.sku, (m = new Map()));
    m.set(row.reservation_id, row.quantity);
  }
  const pipeline = redis.pipeline();
  for (const row of pg.rows) {
    pipeline.hmget(keys.stock(row.sku), 'total', 'reserved');
    pipeline.hgetall(keys.holds(row.sku));
  }
  const replies = (await pipeline.exec()) ?? [];
  const out: SkuDrift[] = [];
  pg.rows.forEach((row, i) => {
    const [e1, counters] = replies[2 * i] ?? [new Error('no reply'), null];
    const [e2, holds] = replies[2 * i + 1] ?? [new Error('no reply'), null];
    if (e1 || e2) throw e1 ?? e2;
    const [total, reserved] = counters as (string | null)[];
    const holdMap = holds as Record<string, string>;
    const pgHolds = heldBySku.get(row.sku) ?? new Map<string, number>();
    const sumOfHolds = Object.values(holdMap).reduce((s, q) => s + Number(q), 0);
    const pgHeld = [...pgHolds.values()].reduce((s, q) => s + q, 0);
    const d: SkuDrift = {
      sku: row.sku,
      redisTotal: total === null || total === undefined ? null : Number(total),
      pgTotal: Number(row.total),
      redisReserved: reserved === null || reserved === undefined ? null : Number(reserved),
      sumOfHolds,
      pgHeld,
      ledgerSum: Number(row.ledger),
      strayHolds: Object.keys(holdMap).filter((id) => !pgHolds.has(id)).length,
      missingHolds: [...pgHolds.keys()].filter((id) => !(id in holdMap)).length,
      units: 0,
    };
    // A SKU missing from Redis altogether drifts by all of its figures.
    d.units =
      Math.abs((d.redisTotal ?? 0) - d.pgTotal) + (d.redisTotal === null ? 1 : 0) + Math.abs((d.redisReserved ?? 0) - sumOfHolds) + Math.abs(sumOfHolds - pgHeld) + Math.abs(d.ledgerSum - d.pgTotal);
    if (d.units > 0 || d.strayHolds > 0 || d.missingHolds > 0) out.push(d);
  });
  return out;
}

// ---------------------------------------------------------------- sales

export interface SalesFindings {
  /** COMMITTED lines with a committed quantity but no sale movement (or a smaller one). */
  lost: string[];
  /** Lines with more than one sale, a sale larger than committed, or sales of non-COMMITTED reservations. */
  doubled: string[];
  /** 200 COMMITTED answers whose reservation PostgreSQL does not have as COMMITTED (or with other quantities). */
  heardNotCommitted: string[];
  /** Temporal says COMMITTED (search attribute), PostgreSQL does not. */
  temporalNotPg: string[];
  negativeTotals: string[];
}

export async function sales(db: Pool, tracker: Tracker, phase: string | undefined, temporal?: Client): Promise<SalesFindings> {
  const lines = await db.query<{ reservation_id: string; sku: string; committed_quantity: number; n: string; d: string }>(
    `SELECT l.reservation_id, l.sku, l.committed_quantity, COUNT(m.id) AS n, COALESCE(SUM(m.delta), 0) AS d
       FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
       LEFT JOIN stock_movements m ON m.reservation_id = l.reservation_id AND m.sku = l.sku AND m.kind = 'sale'
      WHERE r.status = 'COMMITTED'
      GROUP BY l.reservation_id, l.sku, l.committed_quantity
     HAVING COUNT(m.id) <> (CASE WHEN l.committed_quantity > 0 THEN 1 ELSE 0 END) OR COALESCE(SUM(m.delta), 0) <> -l.committed_quantity`,
  );
  const inPhase = (id: string) => phase === undefined || tracker.reservations.get(id)?.phase === phase || (!tracker.reservations.has(id) && phase === '*');
  const lost: string[] = [];
  const doubled: string[] = [];
  for (const row of lines.rows) {
    if (!inPhase(row.reservation_id)) continue;
    const text = `${row.reservation_id}/${row.sku}: committed ${row.committed_quantity}, ${row.n} sale(s) of ${-Number(row.d)}`;
    if (Number(row.n) > 1 || -Number(row.d) > row.committed_quantity) doubled.push(text);
    else lost.push(text);
  }
  const stray = await db.query<{ reservation_id: string; sku: string; status: string }>(
    `SELECT m.reservation_id, m.sku, r.status FROM stock_movements m LEFT JOIN reservations r ON r.id = m.reservation_id
      WHERE m.kind = 'sale' AND (r.status IS DISTINCT FROM 'COMMITTED')`,
  );
  for (const row of stray.rows) if (inPhase(row.reservation_id)) doubled.push(`${row.reservation_id}/${row.sku}: a sale of a ${row.status ?? 'missing'} reservation`);

  const heard = [...tracker.reservations.values()].filter((r) => r.committedHeard && (phase === undefined || r.phase === phase));
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
        if ((pg.lines.get(sku) ?? 0) !== q) heardNotCommitted.push(`${r.id}/${sku}: client heard ${q} sold, PostgreSQL has ${pg.lines.get(sku) ?? 0}`);
      }
    }
  }

  const temporalNotPg: string[] = [];
  if (temporal) {
    const ids: string[] = [];
    try {
      for await (const wf of temporal.workflow.list({ query: `WorkflowType = 'reservationWorkflow' AND ReservationStatus = 'COMMITTED'` })) {
        ids.push(wf.workflowId.replace(/^reservation-/, ''));
      }
      const rows = await db.query<{ id: string; status: string }>(`SELECT id, status FROM reservations WHERE id = ANY($1::text[])`, [ids]);
      const status = new Map(rows.rows.map((r) => [r.id, r.status]));
      for (const id of ids) {
        if (status.get(id) !== 'COMMITTED' && inPhase(id)) temporalNotPg.push(`${id}: Temporal COMMITTED, PostgreSQL ${status.get(id) ?? 'no row'}`);
      }
    } catch {
      // Temporal unreachable: this part is skipped (the next check repeats it)
    }
  }
  const negative = await db.query<{ sku: string; total: string }>('SELECT sku, total FROM skus WHERE total < 0');
  return { lost, doubled, heardNotCommitted, temporalNotPg, negativeTotals: negative.rows.map((r) => `${r.sku}: total ${r.total}`) };
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
export async function wedged(db: Pool, temporal: Client | undefined, tracker: Tracker, slackMs: number): Promise<{ wedged: Wedged[]; temporalUnreachable: boolean }> {
  const now = Date.now();
  const out: Wedged[] = [];
  const rows = await db.query<{ id: string; status: string; expires_at: Date }>(`SELECT id, status, expires_at FROM reservations WHERE status IN ('HELD', 'PENDING')`);
  for (const row of rows.rows) {
    const overdue = now - row.expires_at.getTime() - slackMs;
    if (overdue > 0) out.push({ id: row.id, where: 'postgres', status: row.status, overdueS: Math.round(overdue / 1000) });
  }
  let temporalUnreachable = false;
  if (temporal) {
    try {
      const running: { id: string; start: number }[] = [];
      for await (const wf of temporal.workflow.list({ query: `WorkflowType = 'reservationWorkflow' AND ExecutionStatus = 'Running'` })) {
        running.push({ id: wf.workflowId.replace(/^reservation-/, ''), start: wf.startTime.getTime() });
      }
      const deadlines = running.length
        ? new Map(
            (await db.query<{ id: string; expires_at: Date }>('SELECT id, expires_at FROM reservations WHERE id = ANY($1::text[])', [running.map((r) => r.id)])).rows.map((r) => [
              r.id,
              r.expires_at.getTime(),
            ]),
          )
        : new Map<string, number>();
      for (const wf of running) {
        const deadline = deadlines.get(wf.id) ?? tracker.reservations.get(wf.id)?.expiresAtMs ?? wf.start + 30_000;
        const overdue = now - deadline - slackMs;
        if (overdue > 0) out.push({ id: wf.id, where: 'temporal', status: 'Running', overdueS: Math.round(overdue / 1000) });
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
 * lines in PostgreSQL, its holds in Redis, and in Temporal its status, pending activities (with
 * their attempts and last failure) and the last events of its history. A developer reads this
 * instead of a stack that is gone by then.
 */
export async function evidence(db: Pool, redis: Redis, temporal: Client | undefined, id: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { id };
  try {
    const row = (await db.query('SELECT status, reason, expires_at, created_at, updated_at FROM reservations WHERE id = $1', [id])).rows[0];
    const lines = (await db.query('SELECT sku, quantity, committed_quantity, returned_quantity FROM reservation_lines WHERE reservation_id = $1', [id])).rows;
    out.postgres = row ? { ...row, lines } : 'no row';
    const skus = lines.map((l: { sku: string }) => l.sku);
    out.redisHolds = Object.fromEntries(await Promise.all(skus.map(async (sku: string) => [sku, await redis.hget(keys.holds(sku), id)])));
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
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        pendingActivities: (raw.pendingActivities ?? []).map((a: any) => ({ type: a.activityType?.name, attempt: a.attempt, state: a.state, lastFailure: a.lastFailure?.message })),
        pendingWorkflowTask: raw.pendingWorkflowTask ? { attempt: raw.pendingWorkflowTask.attempt, state: raw.pendingWorkflowTask.state } : null,
      };
      const history = await handle.fetchHistory();
      out.lastEvents = (history.events ?? []).slice(-12).map((e) => {
        const attr = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k]);
        const body = attr ? ((e as Record<string, unknown>)[attr] as Record<string, unknown>) : {};
        const failure = (body.failure as { message?: string } | undefined)?.message;
        const name = attr?.replace(/EventAttributes$/, '') ?? '?';
        const detail = failure ?? (body.activityType as { name?: string } | undefined)?.name ?? (body.signalName as string | undefined) ?? '';
        return `${Number(e.eventId)} ${name}${detail ? `: ${String(detail).slice(0, 200)}` : ''}`;
      });
    } catch (err) {
      out.temporal = `unreadable: ${String(err).slice(0, 300)}`;
    }
  }
  return out;
}
