/**
 * One phase of a run: fresh SKUs, traffic, the fault(s), more traffic, then the wait for the
 * service to heal and the checks. Heal time runs from the moment the fault ended (the broken thing
 * is back) until every self-repairing invariant holds at once: the API is ready, Redis agrees with
 * PostgreSQL on every SKU, and no reservation is past its deadline (plus slack) without a final
 * status. Traffic goes on for `afterMs` after the fault and is then stopped (so drift can be told
 * from work in flight): heal time is therefore never below that plus the drain of in-flight requests.
 */
import { drift, evidence, sales, wedged, type SkuDrift, type Wedged } from './checks';
import type { FaultContext, FaultKind, Timing } from './faults';
import type { PhaseHttp } from './http';
import { sleep } from './procs';
import type { Stack } from './stack';

/** How far past its deadline a reservation may still be settling while the service heals. */
export const SETTLE_SLACK_MS = 5_000;

export interface PhaseResult {
  name: string;
  faults: string[];
  what: string[];
  startedAt: string;
  /** Seconds of traffic, from the phase's start to the end of its traffic. */
  trafficS: number;
  faultS: number;
  operations: number;
  answers: Record<string, number>;
  http: PhaseHttp;
  /** Units by which Redis `available` went below zero (sampled), plus negative PostgreSQL totals. */
  oversoldUnits: number;
  /** The same, per SKU: the worst Redis `available` below zero seen, and PostgreSQL totals below zero. */
  oversold: { redisAvailableBelowZero: Record<string, number>; pgTotalBelowZero: string[] };
  lostSales: string[];
  doubledSales: string[];
  heardNotCommitted: string[];
  temporalNotPg: string[];
  driftUnits: number;
  drift: SkuDrift[];
  /** SKUs already drifting at the previous check (reported there; not counted again). */
  carriedDrift: string[];
  wedged: Wedged[];
  healS: number | null;
  healTimeoutS: number;
  maxLatencyMs: { read: number; write: number };
  /** The service's processes that died on their own during the phase (each restarted by the harness). */
  crashes: { process: string; pid: number; atS: number; exit: string; reason: string }[];
  /** Commits refused with INSUFFICIENT_STOCK after a 201 HELD (a hold a store failure lost). */
  brokenHolds: number;
  /** Creates without an id whose answer never came (may exist). */
  unknownOutcomes: number;
  reservations: number;
  log: string[];
  /** What the stores say about a few of the reservations that broke an invariant (checks.ts, evidence). */
  evidence: Record<string, unknown>[];
  failures: string[];
}

export interface PhaseOptions {
  healTimeoutMs: number;
  /** Random delay (ms) before each fault of a combination, so they overlap differently each time. */
  staggerMs?: number;
  log: (msg: string) => void;
}

/** Bookkeeping across phases: what was already reported, so nothing is counted twice. */
export class RunState {
  index = 0;
  driftingSkus = new Set<string>();
  reportedWedged = new Set<string>();
}

async function until<T>(ms: number, probe: () => Promise<T>, done: (v: T) => boolean): Promise<{ value: T | undefined; at: number | null }> {
  const end = Date.now() + ms;
  let value: T | undefined;
  for (;;) {
    try {
      value = await probe();
      if (done(value)) return { value, at: Date.now() };
    } catch {
      // a store still down: not healed yet
    }
    if (Date.now() > end) return { value, at: null };
    await sleep(1_000);
  }
}

interface HealProbe {
  ready: boolean;
  drift: SkuDrift[];
  wedged: Wedged[];
  temporalUnreachable: boolean;
}

export async function probeHealth(stack: Stack, state: RunState): Promise<HealProbe> {
  const skus = stack.tracker.allSkus();
  const [ready, d, w] = await Promise.all([
    stack.service.ready(),
    drift(stack.pg.pool, stack.redis.client, skus),
    stack.temporalClient().then((c) => wedged(stack.pg.pool, c, stack.tracker, SETTLE_SLACK_MS)),
  ]);
  return {
    ready,
    drift: d.filter((x) => !state.driftingSkus.has(x.sku)),
    wedged: w.wedged.filter((x) => !state.reportedWedged.has(x.id)),
    temporalUnreachable: w.temporalUnreachable,
  };
}

const healthy = (p: HealProbe) => p.ready && p.drift.length === 0 && p.wedged.length === 0 && !p.temporalUnreachable;

export async function runPhase(stack: Stack, state: RunState, name: string, kinds: FaultKind[], timing: Timing, options: PhaseOptions): Promise<PhaseResult> {
  const lines: string[] = [];
  const t0 = Date.now();
  const log = (msg: string) => {
    const line = `[${name} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`;
    lines.push(line);
    options.log(line);
  };
  state.index += 1;
  const tag = `p${state.index}-${name.replace(/[^A-Za-z0-9]/g, '').slice(0, 12)}-${Date.now().toString(36).slice(-4)}`;
  stack.recorder.phase = name;
  const skus = await stack.workload.createSkus(name, tag);
  log(`SKUs ${tag}-A…F and ${skus.flash} created; traffic starts`);
  stack.workload.start(skus);
  await sleep(timing.beforeMs);

  const ctx: FaultContext = { stack, timing, skus, log };
  const faultStart = Date.now();
  const outcomes = await Promise.allSettled(
    kinds.map(async (k) => {
      if (options.staggerMs) await sleep(Math.floor(Math.random() * options.staggerMs));
      await k.inject(ctx);
    }),
  );
  const faultEnd = Date.now();
  const injectFailures = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [`${kinds[i]!.name} could not be injected or undone: ${String(o.reason)}`] : []));
  for (const f of injectFailures) log(f);
  log(`fault over after ${((faultEnd - faultStart) / 1000).toFixed(1)} s; traffic for ${timing.afterMs / 1000} s more`);
  await sleep(timing.afterMs);
  await stack.workload.stop();
  const trafficEnd = Date.now();
  log('traffic stopped; waiting for the service to heal');

  const heal = await until(options.healTimeoutMs - (Date.now() - faultEnd), () => probeHealth(stack, state), healthy);
  const last = heal.value ?? (await probeHealth(stack, state).catch(() => undefined));
  const healS = heal.at === null ? null : Math.round((heal.at - faultEnd) / 100) / 10;
  log(healS === null ? `not healed within ${options.healTimeoutMs / 1000} s of the fault's end` : `healed ${healS} s after the fault's end`);

  // Reservations whose deadline was still ahead at the heal check: wait for it, then look again.
  const latest = Math.max(0, ...[...stack.tracker.reservations.values()].filter((r) => r.phase === name).map((r) => r.expiresAtMs));
  const wait = Math.min(options.healTimeoutMs, latest + SETTLE_SLACK_MS + 1_000 - Date.now());
  if (wait > 0) {
    log(`waiting ${(wait / 1000).toFixed(0)} s for the phase's last reservation deadlines`);
    await sleep(wait);
    const again = await probeHealth(stack, state).catch(() => undefined);
    for (const w of again?.wedged ?? []) if (!last?.wedged.some((x) => x.id === w.id)) last?.wedged.push(w);
  }

  const client = await stack.temporalClient();
  const s = await sales(stack.pg.pool, stack.tracker, name, client).catch((err: unknown) => {
    log(`sales check failed: ${String(err)}`);
    return { lost: [], doubled: [], heardNotCommitted: [], temporalNotPg: [], negativeTotals: [`(check failed: ${String(err)})`] };
  });
  const http = stack.recorder.stats(name);
  const driftNow = last?.drift ?? [];
  const wedgedNow = last?.wedged ?? [];
  for (const d of driftNow) state.driftingSkus.add(d.sku);
  for (const w of wedgedNow) state.reportedWedged.add(w.id);
  const oversoldUnits = stack.sampler.oversoldUnits(name) + s.negativeTotals.length;

  const result: PhaseResult = {
    name,
    faults: kinds.map((k) => k.name),
    what: kinds.map((k) => `${k.name}: ${k.what}`),
    startedAt: new Date(t0).toISOString(),
    trafficS: Math.round((trafficEnd - t0) / 1000),
    faultS: Math.round((faultEnd - faultStart) / 100) / 10,
    operations: http.operations,
    answers: http.byStatus,
    http,
    oversoldUnits,
    oversold: { redisAvailableBelowZero: Object.fromEntries(stack.sampler.negative.get(name) ?? []), pgTotalBelowZero: s.negativeTotals },
    lostSales: s.lost,
    doubledSales: s.doubled,
    heardNotCommitted: s.heardNotCommitted,
    temporalNotPg: s.temporalNotPg,
    driftUnits: driftNow.reduce((sum, d) => sum + d.units, 0),
    drift: driftNow,
    carriedDrift: [...state.driftingSkus].filter((sku) => !driftNow.some((d) => d.sku === sku)),
    wedged: wedgedNow,
    healS,
    healTimeoutS: options.healTimeoutMs / 1000,
    maxLatencyMs: http.maxMs,
    crashes: stack.service.crashes.filter((c) => c.at >= t0).map((c) => ({ process: c.process, pid: c.pid, atS: Math.round((c.at - t0) / 100) / 10, exit: c.exit, reason: c.reason })),
    brokenHolds: stack.tracker.brokenHolds.get(name) ?? 0,
    unknownOutcomes: stack.tracker.unknownOutcomes.get(name) ?? 0,
    reservations: [...stack.tracker.reservations.values()].filter((r) => r.phase === name).length,
    log: lines,
    evidence: [],
    failures: [...injectFailures],
  };
  result.evidence = await gatherEvidence(stack, result);
  result.failures.push(...judge(result));
  for (const f of result.failures) log(`FAIL ${f}`);
  return result;
}

/** Evidence for up to 5 reservations named by the findings (wedged first, then sales). */
export async function gatherEvidence(stack: Stack, r: PhaseResult): Promise<Record<string, unknown>[]> {
  const ids = new Set<string>();
  for (const w of r.wedged) ids.add(w.id);
  for (const text of [...r.lostSales, ...r.doubledSales, ...r.heardNotCommitted, ...r.temporalNotPg]) ids.add(text.split(/[/:]/)[0]!);
  const client = await stack.temporalClient().catch(() => undefined);
  return Promise.all([...ids].slice(0, 5).map((id) => evidence(stack.pg.pool, stack.redis.client, client, id)));
}

/** The invariants a phase broke, one line each (empty: it passed). */
export function judge(r: PhaseResult): string[] {
  const f: string[] = [];
  for (const c of r.crashes) f.push(`${c.process} process crashed (${c.exit}) at +${c.atS} s: ${c.reason}`);
  if (r.oversoldUnits > 0) {
    const redis = Object.entries(r.oversold.redisAvailableBelowZero);
    const where = [
      ...(redis.length ? [`Redis available below zero on ${redis.length} SKU(s), worst ${Math.max(...redis.map(([, n]) => n))} (${redis[0]![0]})`] : []),
      ...(r.oversold.pgTotalBelowZero.length ? [`PostgreSQL total below zero: ${r.oversold.pgTotalBelowZero.join(', ')}`] : []),
    ];
    f.push(`oversold: ${r.oversoldUnits} unit(s): ${where.join('; ')}`);
  }
  if (r.lostSales.length > 0) f.push(`lost sales: ${r.lostSales.length} (e.g. ${r.lostSales[0]})`);
  if (r.doubledSales.length > 0) f.push(`doubled sales: ${r.doubledSales.length} (e.g. ${r.doubledSales[0]})`);
  if (r.heardNotCommitted.length > 0) f.push(`200 COMMITTED not a sale in PostgreSQL: ${r.heardNotCommitted.length} (e.g. ${r.heardNotCommitted[0]})`);
  if (r.temporalNotPg.length > 0) f.push(`COMMITTED in Temporal, not in PostgreSQL: ${r.temporalNotPg.length} (e.g. ${r.temporalNotPg[0]})`);
  if (r.driftUnits > 0 || r.drift.length > 0) {
    const d = r.drift[0]!;
    f.push(
      `drift after ${r.healTimeoutS} s: ${r.driftUnits} unit(s) on ${r.drift.length} SKU(s) (e.g. ${d.sku}: Redis total ${d.redisTotal} vs PG ${d.pgTotal}, reserved ${d.redisReserved}, holds ${d.sumOfHolds}, HELD rows ${d.pgHeld}, ledger ${d.ledgerSum})`,
    );
  }
  if (r.wedged.length > 0) f.push(`wedged reservations: ${r.wedged.length} (e.g. ${r.wedged[0]!.id} ${r.wedged[0]!.status} in ${r.wedged[0]!.where}, ${r.wedged[0]!.overdueS} s overdue)`);
  if (r.healS === null && r.drift.length === 0 && r.wedged.length === 0) f.push(`not healed within ${r.healTimeoutS} s (API not ready or Temporal unreachable)`);
  if (r.http.badAnswers > 0) f.push(`answers other than 2xx/4xx/503: ${r.http.badAnswers} (${r.http.examples.slice(0, 3).join('; ')})`);
  if (r.http.overDeadline > 0) f.push(`answers over the deadline (read 2 s, write 30 s): ${r.http.overDeadline} (max read ${r.maxLatencyMs.read} ms, write ${r.maxLatencyMs.write} ms)`);
  return f;
}

/**
 * After the last phase: waits until every reservation a client made is past its deadline (at
 * most `maxWaitMs`), then reports those still not final, under the phase that created them.
 */
export async function finalSweep(stack: Stack, state: RunState, maxWaitMs: number, log: (msg: string) => void): Promise<Map<string, Wedged[]>> {
  const latest = Math.max(0, ...[...stack.tracker.reservations.values()].map((r) => r.expiresAtMs));
  const wait = Math.min(maxWaitMs, Math.max(0, latest + SETTLE_SLACK_MS * 2 - Date.now()));
  if (wait > 0) {
    log(`final sweep: waiting ${(wait / 1000).toFixed(0)} s for the last deadlines`);
    await sleep(wait);
  }
  const out = new Map<string, Wedged[]>();
  const client = await stack.temporalClient();
  const { wedged: found } = await wedged(stack.pg.pool, client, stack.tracker, SETTLE_SLACK_MS);
  for (const w of found) {
    if (state.reportedWedged.has(w.id)) continue;
    state.reportedWedged.add(w.id);
    const phase = stack.tracker.reservations.get(w.id)?.phase ?? '(unknown phase)';
    out.set(phase, [...(out.get(phase) ?? []), w]);
  }
  return out;
}
