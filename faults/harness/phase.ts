/**
 * One phase of a run: fresh SKUs, traffic, the fault(s), more traffic, then the wait for the
 * service to heal and the checks. Heal time runs from the moment the fault ended (the broken thing
 * is back) until every self-repairing invariant holds at once: the API is ready, Redis agrees with
 * PostgreSQL on every SKU, and no reservation is past its deadline (plus slack) without a final
 * status. Traffic goes on for `afterMs` after the fault and is then stopped (so drift can be told
 * from work in flight): heal time is therefore never below that plus the drain of in-flight requests.
 *
 * After the heal, the phase waits for its last reservation deadlines and looks again (drift and
 * wedged reservations once every reservation has ended), then judges what clients were told
 * (promises.ts) and reads what the reconciler counted: drift it could not explain is allowed only
 * in a phase that lost Redis data.
 */
import { statSync } from 'node:fs';
import {
  countsGrown,
  describeDrift,
  drift,
  evidence,
  reconcilerCounts,
  sales,
  wedged,
  type SkuDrift,
  type Wedged,
} from './checks';
import type { FaultContext, FaultHit, FaultKind, Timing } from './faults';
import type { PhaseHttp } from './http';
import { sleep } from './procs';
import { promises, type PromiseFindings } from './promises';
import type { Stack } from './stack';

/** How far past its deadline a reservation may still be settling while the service heals. */
export const SETTLE_SLACK_MS = 5_000;
/** How long the look after the deadlines waits for drift to clear (a release or commit in flight between its two writes). */
const AFTER_DEADLINES_MS = 20_000;

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
  /** Units by which Redis `available` went below zero (sampled), PostgreSQL promised beyond `total` (sampled), plus negative PostgreSQL totals. */
  oversoldUnits: number;
  /** The same, per SKU: the worst seen of each. */
  oversold: {
    redisAvailableBelowZero: Record<string, number>;
    pgPromisedAboveTotal: Record<string, number>;
    pgTotalBelowZero: string[];
  };
  lostSales: string[];
  doubledSales: string[];
  heardNotCommitted: string[];
  temporalNotPg: string[];
  /** Reservations a client heard HELD whose promise was broken (promises.ts), one line each. */
  brokenPromises: string[];
  /** Other answers PostgreSQL contradicts (promises.ts). */
  contradicted: string[];
  /** How many answers of each kind were judged, and the reservations under ids no client was told. */
  judged: Record<string, number>;
  unknownIds: PromiseFindings['unknownIds'];
  /** Drift units at the heal check plus after the deadlines (SKUs already reported not counted again). */
  driftUnits: number;
  drift: SkuDrift[];
  /** Drift once every reservation of the phase had ended (SKUs not already drifting at the heal check). */
  driftAfterDeadlines: SkuDrift[];
  /** SKUs already drifting at the previous check (reported there; not counted again). */
  carriedDrift: string[];
  wedged: Wedged[];
  healS: number | null;
  healTimeoutS: number;
  maxLatencyMs: { read: number; write: number };
  /** The service's processes that died on their own during the phase (each restarted by the harness). */
  crashes: { process: string; pid: number; atS: number; exit: string; reason: string }[];
  /** What the reconciler counted during the phase (reconciler_counts): drift it could not explain (`unexplained:<kind>`), and its repairs. */
  unexplained: Record<string, number>;
  repairs: Record<string, number>;
  /** True when a fault of the phase lost Redis data: only then may there be unexplained drift. */
  unexplainedAllowed: boolean;
  /** The service's alerts (error logs of the reconciler and of refused holds) during the phase, the first few. */
  alerts: string[];
  /** What each fault met; `hit` is false when one of them met nothing it is meant to break. */
  hits: FaultHit[];
  hit: boolean;
  /** Creates without an id whose answer never came (may exist). */
  unknownOutcomes: number;
  reservations: number;
  log: string[];
  /** What the stores say about a few of the reservations that broke an invariant (checks.ts, evidence). */
  evidence: Record<string, unknown>[];
  /** Failures found outside the checks `judge` reads (a fault that could not be injected, the soak's RSS): kept when the phase is judged again. */
  extraFailures: string[];
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

export async function until<T>(
  ms: number,
  probe: () => Promise<T>,
  done: (v: T) => boolean,
): Promise<{ value: T | undefined; at: number | null }> {
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

export interface HealProbe {
  ready: boolean;
  drift: SkuDrift[];
  wedged: Wedged[];
  temporalUnreachable: boolean;
}

export async function probeHealth(stack: Stack, state: RunState): Promise<HealProbe> {
  const skus = stack.tracker.allSkus();
  const [ready, d, w] = await Promise.all([
    stack.service.ready(),
    drift(stack.pg.pool, stack.redis.client, skus, (sku) => stack.tracker.lostAt(sku)),
    stack.temporalClient().then((c) => wedged(stack.pg.pool, c, stack.tracker, SETTLE_SLACK_MS)),
  ]);
  return {
    ready,
    drift: d.filter((x) => !state.driftingSkus.has(x.sku)),
    wedged: w.wedged.filter((x) => !state.reportedWedged.has(x.id)),
    temporalUnreachable: w.temporalUnreachable,
  };
}

export const healthy = (p: HealProbe) =>
  p.ready && p.drift.length === 0 && p.wedged.length === 0 && !p.temporalUnreachable;

/** Where the service's logs are now, so the alerts of a phase can be read from there on. */
export function logOffsets(stack: Stack): Map<string, number> {
  const size = (file: string) => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  };
  return new Map([stack.service.worker, stack.service.api].map((p) => [p.logFile, size(p.logFile)]));
}

/** The service's alerts since `offsets`: error logs of the reconciler and of holds PostgreSQL refused, as "kind sku reservation", the first `max`. */
function alertsSince(stack: Stack, offsets: Map<string, number>, max = 20): string[] {
  const out: string[] = [];
  for (const p of [stack.service.worker, stack.service.api]) {
    for (const line of p.logSince(offsets.get(p.logFile) ?? 0).split('\n')) {
      if (!line.includes('"level":50') || !/reconciler:|refused a hold/.test(line)) continue;
      try {
        const e = JSON.parse(line) as Record<string, unknown>;
        const what = [e.reconcile ?? e.refusal ?? '?', e.sku, e.reservationId].filter(Boolean).join(' ');
        out.push(`${p.name}: ${what}: ${String(e.msg).slice(0, 80)}`);
      } catch {
        out.push(`${p.name}: ${line.slice(0, 160)}`);
      }
      if (out.length >= max) return out;
    }
  }
  return out;
}

/** What a phase (or the soak) gathered on its way, for `closePhase`. */
export interface PhaseRecord {
  name: string;
  kinds: FaultKind[];
  t0: number;
  faultStart: number;
  faultEnd: number;
  trafficEnd: number;
  healS: number | null;
  healTimeoutMs: number;
  /** The heal check's last probe (undefined when no probe answered). */
  last: HealProbe | undefined;
  hits: FaultHit[];
  extraFailures: string[];
  countsBefore: Map<string, number> | undefined;
  logOffsets: Map<string, number>;
  lines: string[];
  log: (msg: string) => void;
}

/**
 * The end of a phase: waits for its last reservation deadlines and looks again (drift, wedged),
 * then judges the sales and what clients were told, reads the reconciler's counts and the
 * service's alerts, and returns the phase's result, judged.
 */
export async function closePhase(stack: Stack, state: RunState, rec: PhaseRecord): Promise<PhaseResult> {
  const { name, log } = rec;
  const extraFailures = [...rec.extraFailures];
  // Reservations whose deadline was still ahead at the heal check: wait for it, then look again.
  const latest = Math.max(
    0,
    ...[...stack.tracker.reservations.values()].filter((r) => r.phase === name).map((r) => r.expiresAtMs),
  );
  const wait = Math.min(rec.healTimeoutMs, latest + SETTLE_SLACK_MS + 1_000 - Date.now());
  if (wait > 0) {
    log(`waiting ${(wait / 1000).toFixed(0)} s for the phase's last reservation deadlines`);
    await sleep(wait);
  }
  const healDrift = rec.last?.drift ?? [];
  const healWedged = rec.last?.wedged ?? [];
  for (const d of healDrift) state.driftingSkus.add(d.sku);
  for (const w of healWedged) state.reportedWedged.add(w.id);
  // Every reservation has ended now: nothing is in flight, so the stores must agree (a release
  // or commit between its two writes is given a few seconds).
  const again = await until(
    AFTER_DEADLINES_MS,
    () => probeHealth(stack, state),
    (p) => p.drift.length === 0 && p.wedged.length === 0 && !p.temporalUnreachable,
  );
  if (!again.value)
    extraFailures.push(`the look after the deadlines could not read the stores within ${AFTER_DEADLINES_MS / 1000} s`);
  else if (again.value.temporalUnreachable)
    extraFailures.push('Temporal unreachable after the deadlines: its running workflows were not checked');
  const driftAfter = again.value?.drift ?? [];
  const wedgedNow = [
    ...healWedged,
    ...(again.value?.wedged ?? []).filter((w) => !healWedged.some((x) => x.id === w.id)),
  ];
  for (const d of driftAfter) state.driftingSkus.add(d.sku);
  for (const w of wedgedNow) state.reportedWedged.add(w.id);
  if (driftAfter.length > 0) log(`drift after the deadlines: ${driftAfter.map(describeDrift).join(' | ')}`);

  const client = await stack.temporalClient();
  const s = await sales(stack.pg.pool, stack.tracker, name, client).catch((err: unknown) => {
    extraFailures.push(`sales check failed: ${String(err)}`);
    return { lost: [], doubled: [], heardNotCommitted: [], temporalNotPg: [], negativeTotals: [] };
  });
  const skus = stack.tracker.skusOf(name);
  const told = await promises(stack.pg.pool, stack.tracker, name, skus).catch((err: unknown) => {
    extraFailures.push(`promise check failed: ${String(err)}`);
    return undefined;
  });
  let unexplained: Record<string, number> = {};
  let repairs: Record<string, number> = {};
  try {
    if (!rec.countsBefore) throw new Error('not read at the phase start');
    const grown = countsGrown(rec.countsBefore, await reconcilerCounts(stack.pg.pool));
    for (const [kind, n] of Object.entries(grown)) {
      if (kind.startsWith('unexplained:')) unexplained[kind.slice('unexplained:'.length)] = n;
      else if (kind !== 'scan') repairs[kind] = n;
    }
  } catch (err) {
    extraFailures.push(`the reconciler's counts could not be read: ${String(err)}`);
    unexplained = {};
    repairs = {};
  }
  const http = stack.recorder.stats(name);
  const redisNegative = Object.fromEntries(stack.sampler.negative.get(name) ?? []);
  const pgOverpromised = Object.fromEntries(stack.sampler.overpromised.get(name) ?? []);
  const result: PhaseResult = {
    name,
    faults: rec.kinds.map((k) => k.name),
    what: rec.kinds.map((k) => `${k.name}: ${k.what}`),
    startedAt: new Date(rec.t0).toISOString(),
    trafficS: Math.round((rec.trafficEnd - rec.t0) / 1000),
    faultS: Math.round((rec.faultEnd - rec.faultStart) / 100) / 10,
    operations: http.operations,
    answers: http.byStatus,
    http,
    oversoldUnits: stack.sampler.oversoldUnits(name) + stack.sampler.overpromisedUnits(name) + s.negativeTotals.length,
    oversold: {
      redisAvailableBelowZero: redisNegative,
      pgPromisedAboveTotal: pgOverpromised,
      pgTotalBelowZero: s.negativeTotals,
    },
    lostSales: s.lost,
    doubledSales: s.doubled,
    heardNotCommitted: s.heardNotCommitted,
    temporalNotPg: s.temporalNotPg,
    brokenPromises: told?.broken ?? [],
    contradicted: told?.contradicted ?? [],
    judged: told?.judged ?? {},
    unknownIds: told?.unknownIds ?? { found: 0, lostAnswers: 0, examples: [] },
    driftUnits: [...healDrift, ...driftAfter].reduce((sum, d) => sum + d.units, 0),
    drift: healDrift,
    driftAfterDeadlines: driftAfter,
    carriedDrift: [...state.driftingSkus].filter(
      (sku) => !healDrift.some((d) => d.sku === sku) && !driftAfter.some((d) => d.sku === sku),
    ),
    wedged: wedgedNow,
    healS: rec.healS,
    healTimeoutS: rec.healTimeoutMs / 1000,
    maxLatencyMs: http.maxMs,
    crashes: stack.service.crashes
      .filter((c) => c.at >= rec.t0)
      .map((c) => ({
        process: c.process,
        pid: c.pid,
        atS: Math.round((c.at - rec.t0) / 100) / 10,
        exit: c.exit,
        reason: c.reason,
      })),
    unexplained,
    repairs,
    unexplainedAllowed: rec.kinds.some((k) => k.losesRedisData),
    alerts: alertsSince(stack, rec.logOffsets),
    hits: rec.hits,
    hit: rec.hits.length === rec.kinds.length && rec.hits.every((h) => h.hit),
    unknownOutcomes: stack.tracker.unknownOutcomes.get(name) ?? 0,
    reservations: [...stack.tracker.reservations.values()].filter((r) => r.phase === name).length,
    log: rec.lines,
    evidence: [],
    extraFailures,
    failures: [],
  };
  result.evidence = await gatherEvidence(stack, result);
  result.failures = judge(result);
  for (const f of result.failures) log(`FAIL ${f}`);
  return result;
}

export async function runPhase(
  stack: Stack,
  state: RunState,
  name: string,
  kinds: FaultKind[],
  timing: Timing,
  options: PhaseOptions,
): Promise<PhaseResult> {
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
  const countsBefore = await reconcilerCounts(stack.pg.pool).catch(() => undefined);
  const offsets = logOffsets(stack);
  log(`SKUs ${tag}-A…F (F limited to ${skus.maxPerCustomer} per customer) and ${skus.flash} created; traffic starts`);
  stack.workload.start(skus);
  await sleep(timing.beforeMs);

  const ctx: FaultContext = { stack, timing, skus, log };
  const faultStart = Date.now();
  const outcomes = await Promise.allSettled(
    kinds.map(async (k) => {
      if (options.staggerMs) await sleep(Math.floor(Math.random() * options.staggerMs));
      return k.inject(ctx);
    }),
  );
  const faultEnd = Date.now();
  const hits = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  for (const h of hits) log(`${h.fault} ${h.hit ? 'hit' : 'HIT NOTHING'}: ${h.what}`);
  const injectFailures = outcomes.flatMap((o, i) =>
    o.status === 'rejected' ? [`${kinds[i]!.name} could not be injected or undone: ${String(o.reason)}`] : [],
  );
  for (const f of injectFailures) log(f);
  log(`fault over after ${((faultEnd - faultStart) / 1000).toFixed(1)} s; traffic for ${timing.afterMs / 1000} s more`);
  await sleep(timing.afterMs);
  await stack.workload.stop();
  const trafficEnd = Date.now();
  log('traffic stopped; waiting for the service to heal');

  const heal = await until(options.healTimeoutMs - (Date.now() - faultEnd), () => probeHealth(stack, state), healthy);
  const last = heal.value ?? (await probeHealth(stack, state).catch(() => undefined));
  const healS = heal.at === null ? null : Math.round((heal.at - faultEnd) / 100) / 10;
  log(
    healS === null
      ? `not healed within ${options.healTimeoutMs / 1000} s of the fault's end`
      : `healed ${healS} s after the fault's end`,
  );

  return closePhase(stack, state, {
    name,
    kinds,
    t0,
    faultStart,
    faultEnd,
    trafficEnd,
    healS,
    healTimeoutMs: options.healTimeoutMs,
    last,
    hits,
    extraFailures: injectFailures,
    countsBefore,
    logOffsets: offsets,
    lines,
    log,
  });
}

/** Evidence for up to 5 reservations named by the findings (wedged first, then sales, then promises). */
export async function gatherEvidence(stack: Stack, r: PhaseResult): Promise<Record<string, unknown>[]> {
  const ids = new Set<string>();
  for (const w of r.wedged) ids.add(w.id);
  for (const text of [
    ...r.lostSales,
    ...r.doubledSales,
    ...r.heardNotCommitted,
    ...r.temporalNotPg,
    ...r.brokenPromises,
    ...r.contradicted,
  ]) {
    const id = text.split(/[/:\s]/)[0]!;
    if (/^[A-Za-z0-9_-]{1,64}$/.test(id) && !/^\d+$/.test(id)) ids.add(id);
  }
  const client = await stack.temporalClient().catch(() => undefined);
  return Promise.all(
    [...ids]
      .slice(0, 5)
      .map((id) => evidence(stack.pg.pool, stack.redis.client, client, id, stack.tracker.reservations.get(id))),
  );
}

const sumOf = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const listOf = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

/** The invariants a phase broke, one line each (empty: it passed). Reads only the result, so a phase can be judged again. */
export function judge(r: PhaseResult): string[] {
  const f: string[] = [...r.extraFailures];
  for (const h of r.hits) if (!h.hit) f.push(`the ${h.fault} fault hit nothing: ${h.what}`);
  for (const c of r.crashes) f.push(`${c.process} process crashed (${c.exit}) at +${c.atS} s: ${c.reason}`);
  if (r.oversoldUnits > 0) {
    const redis = Object.entries(r.oversold.redisAvailableBelowZero);
    const pg = Object.entries(r.oversold.pgPromisedAboveTotal);
    const where = [
      ...(redis.length
        ? [
            `Redis available below zero on ${redis.length} SKU(s), worst ${Math.max(...redis.map(([, n]) => n))} (${redis[0]![0]})`,
          ]
        : []),
      ...(pg.length
        ? [
            `PostgreSQL promised (HELD) beyond total on ${pg.length} SKU(s), worst ${Math.max(...pg.map(([, n]) => n))} (${pg[0]![0]})`,
          ]
        : []),
      ...(r.oversold.pgTotalBelowZero.length
        ? [`PostgreSQL total below zero: ${r.oversold.pgTotalBelowZero.join(', ')}`]
        : []),
    ];
    f.push(`oversold: ${r.oversoldUnits} unit(s): ${where.join('; ')}`);
  }
  if (r.lostSales.length > 0) f.push(`lost sales: ${r.lostSales.length} (e.g. ${r.lostSales[0]})`);
  if (r.doubledSales.length > 0) f.push(`doubled sales: ${r.doubledSales.length} (e.g. ${r.doubledSales[0]})`);
  if (r.heardNotCommitted.length > 0)
    f.push(`200 COMMITTED not a sale in PostgreSQL: ${r.heardNotCommitted.length} (e.g. ${r.heardNotCommitted[0]})`);
  if (r.temporalNotPg.length > 0)
    f.push(`COMMITTED in Temporal, not in PostgreSQL: ${r.temporalNotPg.length} (e.g. ${r.temporalNotPg[0]})`);
  if (r.brokenPromises.length > 0)
    f.push(
      `broken promises: ${r.brokenPromises.length} reservation(s) heard HELD lost their units (e.g. ${r.brokenPromises[0]})`,
    );
  if (r.contradicted.length > 0)
    f.push(`answers PostgreSQL contradicts: ${r.contradicted.length} (e.g. ${r.contradicted[0]})`);
  if (r.drift.length > 0)
    f.push(
      `drift after ${r.healTimeoutS} s: ${r.drift.reduce((n, d) => n + d.units, 0)} unit(s) on ${r.drift.length} SKU(s) (e.g. ${describeDrift(r.drift[0]!)})`,
    );
  if (r.driftAfterDeadlines.length > 0) {
    f.push(
      `drift once every reservation had ended: ${r.driftAfterDeadlines.reduce((n, d) => n + d.units, 0)} unit(s) on ${r.driftAfterDeadlines.length} SKU(s) (e.g. ${describeDrift(r.driftAfterDeadlines[0]!)})`,
    );
  }
  if (r.wedged.length > 0)
    f.push(
      `wedged reservations: ${r.wedged.length} (e.g. ${r.wedged[0]!.id} ${r.wedged[0]!.status} in ${r.wedged[0]!.where}, ${r.wedged[0]!.overdueS} s overdue)`,
    );
  if (!r.unexplainedAllowed && sumOf(r.unexplained) > 0) {
    f.push(
      `the reconciler found drift it could not explain in a phase that lost no Redis data (the service caused it): ${listOf(r.unexplained)} (repairs: ${listOf(r.repairs) || 'none'})`,
    );
  }
  if (r.healS === null && r.drift.length === 0 && r.wedged.length === 0)
    f.push(`not healed within ${r.healTimeoutS} s (API not ready or Temporal unreachable)`);
  if (r.http.badAnswers > 0)
    f.push(`answers other than 2xx/4xx/503: ${r.http.badAnswers} (${r.http.examples.slice(0, 3).join('; ')})`);
  if (r.http.overDeadline > 0)
    f.push(
      `answers over the deadline (read 2 s, write 30 s): ${r.http.overDeadline} (max read ${r.maxLatencyMs.read} ms, write ${r.maxLatencyMs.write} ms)`,
    );
  return f;
}

/**
 * After the last phase: waits until every reservation a client made is past its deadline (at
 * most `maxWaitMs`), then reports those still not final, under the phase that created them.
 */
export async function finalSweep(
  stack: Stack,
  state: RunState,
  maxWaitMs: number,
  log: (msg: string) => void,
): Promise<Map<string, Wedged[]>> {
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
