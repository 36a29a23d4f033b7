/**
 * Scenario 3, reservations: the full lifecycle (POST /v1/reservations → 201 HELD, then
 * POST /v1/reservations/:id/commit → 200 COMMITTED) by a closed loop of concurrent users, at
 * saturation, over 100 SKUs. Two references on the same Temporal server, each driven by a
 * Temporal client made as the API makes its own and served by its own worker with the service
 * worker's settings (bench/children/reference-worker.ts):
 *   - bare: update-with-start into one no-op local activity, then one update;
 *   - same shape: the service's reservationWorkflow, started as the API starts it, with
 *     activities that do no I/O (the local-activity hold, the TTL timer, the commit update into
 *     a local activity, the search-attribute upserts and memo).
 * The three run in rounds, the order rotated each round. Then the same lifecycle by one user
 * alone (low load), in rounds with both references, for the latency on a quiet service.
 */
import type { LifecycleJob, LifecycleResult } from '../children/lifecycle';
import type { ReferenceClientJob, ReferenceClientResult } from '../children/reference-client';
import type { ReferenceShape, ReferenceWorkerConfig } from '../children/reference-worker';
import { createSku } from '../harness/api';
import { detail, progress } from '../harness/progress';
import { cpuMeter, type CpuUsage } from '../harness/cpu';
import { runJob, startChildService } from '../harness/procs';
import { median, round3, type LatencySummary } from '../harness/stats';
import { fmt, type Context, type Outcome, type Row } from './types';

export const RESERVATION_GOALS = { ratio: 0.8, sameShapeRatio: 0.95, lowLoadReserveRatio: 1.2 };
/** Who runs a round: the service, the bare reference, the same-shape reference. */
type Who = 'service' | 'reference' | 'sameShape';
export const SATURATION_USERS = 32;
const SKUS = 100;

export interface ReservationsData {
  rps: number;
  referenceRps: number;
  ratio: number;
  /** The same-shape floor's lifecycles/s, and the median per-round ratio of the service's to it. */
  sameShapeRps?: number;
  sameShapeRatio?: number;
  reserveP50Ms: number;
  reserveP99Ms: number;
  commitP50Ms: number;
  commitP99Ms: number;
  lowLoadReserveP50Ms: number;
  /** The bare update-with-start's p50 at low load (one user), median of the pairs measured beside the service's. */
  lowLoadReferenceReserveP50Ms: number;
  /** Median over the low-load pairs of the service's reserve p50 / the bare update-with-start's: the goal's figure. */
  lowLoadReserveRatio?: number;
  lowLoadRounds?: {
    reserveP50Ms: number;
    referenceReserveP50Ms: number;
    ratio: number;
    sameShapeReserveP50Ms?: number;
  }[];
  /** The same-shape floor's update-with-start p50 at low load (median of the rounds). */
  lowLoadSameShapeReserveP50Ms?: number;
  lowLoadCommitP50Ms: number;
  users: number;
  rounds: { rps: number; referenceRps: number; ratio: number; sameShapeRps?: number; sameShapeRatio?: number }[];
  latency: {
    reserve: LatencySummary;
    commit: LatencySummary;
    referenceReserve: LatencySummary;
    referenceCommit: LatencySummary;
    lowLoadReserve: LatencySummary;
    lowLoadCommit: LatencySummary;
    referenceLowLoadReserve: LatencySummary;
    sameShapeReserve?: LatencySummary;
    sameShapeCommit?: LatencySummary;
  };
  failures: Record<string, number>;
  /** CPU milliseconds per lifecycle by process (warm-up included), median over the rounds. */
  cpuMsPerLifecycle?: {
    service: Record<string, number>;
    reference: Record<string, number>;
    sameShape?: Record<string, number>;
  };
}

export async function lifecycle(
  ctx: Context,
  url: string,
  skus: string[],
  users: number,
  durationS: number,
  label: string,
  idPrefix: string,
): Promise<LifecycleResult> {
  const job: LifecycleJob = {
    mode: 'lifecycle',
    url,
    headers: { authorization: `Bearer ${ctx.target.clientToken}` },
    concurrency: users,
    skus,
    idPrefix,
    ttlSeconds: 600,
    durationS,
    warmupS: ctx.seconds(2),
  };
  const r = await runJob<LifecycleResult>('lifecycle', job, {
    timeoutMs: (durationS + 90) * 1000,
    onProgress: (t) => detail(`${label}: ${t}`),
  });
  detail(
    `${label}: ${r.rate.toFixed(1)} lifecycles/s; reserve p50 ${fmt.ms(r.reserve.p50)} p99 ${fmt.ms(r.reserve.p99)}; commit p50 ${fmt.ms(r.commit.p50)} p99 ${fmt.ms(r.commit.p99)}`,
  );
  if (Object.keys(r.failures).length > 0)
    detail(`${label}: failures ${JSON.stringify(r.failures)} e.g. ${r.failureSamples[0]}`);
  return r;
}

export async function reservations(ctx: Context): Promise<Outcome<ReservationsData>> {
  const { target } = ctx;
  const skus = Array.from({ length: SKUS }, (_, i) => `RES-${ctx.run}-${i}`);
  for (const sku of skus) await createSku(target, sku, 1_000_000, 'reservations benchmark');

  const refQueue = `bench-reference-${ctx.run}`;
  const sameQueue = `bench-same-shape-${ctx.run}`;
  detail("reference workers: bundling the bare workflow and the service's workflow (same shape, no I/O)");
  const refWorker = await startChildService<{ taskQueue: string }>('reference-worker', {
    temporalAddress: target.temporalAddress,
    namespace: target.namespace,
    taskQueue: refQueue,
    shape: 'bare',
  } satisfies ReferenceWorkerConfig);
  const sameWorker = await startChildService<{ taskQueue: string }>('reference-worker', {
    temporalAddress: target.temporalAddress,
    namespace: target.namespace,
    taskQueue: sameQueue,
    shape: 'same',
  } satisfies ReferenceWorkerConfig).catch(async (err: unknown) => {
    await refWorker.stop();
    throw err;
  });
  try {
    const reference = async (
      shape: ReferenceShape,
      users: number,
      durationS: number,
      label: string,
      idPrefix: string,
    ) => {
      const job: ReferenceClientJob = {
        temporalAddress: target.temporalAddress,
        namespace: target.namespace,
        taskQueue: shape === 'same' ? sameQueue : refQueue,
        concurrency: users,
        durationS,
        warmupS: ctx.seconds(2),
        idPrefix,
        shape,
        skus,
      };
      const r = await runJob<ReferenceClientResult>('reference-client', job, {
        timeoutMs: (durationS + 90) * 1000,
        onProgress: (t) => detail(`${label}: ${t}`),
      });
      detail(
        `${label}: ${r.rate.toFixed(1)} lifecycles/s; update-with-start p50 ${fmt.ms(r.reserve.p50)} p99 ${fmt.ms(r.reserve.p99)}; update p50 ${fmt.ms(r.commit.p50)}`,
      );
      if (r.failures > 0) detail(`${label}: ${r.failures} failures, e.g. ${r.failureSamples[0]}`);
      return r;
    };

    progress(
      `reservations: reserve → commit at saturation (${SATURATION_USERS} users), in rounds with the bare and the same-shape references`,
    );
    const rounds: ReservationsData['rounds'] = [];
    let svc: LifecycleResult | undefined;
    let ref: ReferenceClientResult | undefined;
    let same: ReferenceClientResult | undefined;
    const cpu: Record<Who, Record<string, number[]>> = { service: {}, reference: {}, sameShape: {} };
    const meterOf = () =>
      cpuMeter({
        temporal: target.temporalPid,
        api: target.apiPid,
        worker: target.workerPid,
        referenceWorker: refWorker.pid,
        sameShapeWorker: sameWorker.pid,
      });
    const account = (who: Who, usage: CpuUsage, lifecycles: number) => {
      for (const [name, seconds] of Object.entries(usage.seconds))
        (cpu[who][name] ??= []).push((seconds * 1000) / Math.max(1, lifecycles));
      detail(
        `${who} CPU per lifecycle: ${Object.entries(usage.seconds)
          .map(([n, sec]) => `${n} ${((sec * 1000) / Math.max(1, lifecycles)).toFixed(1)} ms`)
          .join(', ')}; machine ${Math.round((usage.machineBusy ?? 0) * 100)}% busy`,
      );
    };
    const whos: readonly Who[] = ['reference', 'sameShape', 'service'];
    for (let round = 0; round < 3; round++) {
      // Rotated each round, so that no side always runs first or right after another.
      const order = whos.map((_, i) => whos[(i + round) % whos.length]!);
      for (const who of order) {
        await ctx.settle(`round ${round + 1} ${who}`);
        const meter = meterOf();
        if (who === 'service') {
          svc = await lifecycle(
            ctx,
            target.url,
            skus,
            SATURATION_USERS,
            ctx.seconds(10),
            `round ${round + 1} service`,
            `r${ctx.run}s${round}`,
          );
          account(who, meter.stop(), svc.completed + svc.rate * ctx.seconds(2));
          if (svc.clientCpuMsPerLifecycle !== undefined) (cpu[who].httpClient ??= []).push(svc.clientCpuMsPerLifecycle);
        } else {
          const shape = who === 'reference' ? 'bare' : 'same';
          const r = await reference(
            shape,
            SATURATION_USERS,
            ctx.seconds(10),
            `round ${round + 1} ${shape === 'bare' ? 'bare reference' : 'same-shape reference'}`,
            `${shape === 'bare' ? 'ref' : 'same'}-${ctx.run}-${round}`,
          );
          if (who === 'reference') ref = r;
          else same = r;
          account(who, meter.stop(), r.completed + r.rate * ctx.seconds(2));
          (cpu[who].client ??= []).push(r.clientCpuMsPerLifecycle);
        }
      }
      rounds.push({
        rps: round3(svc!.rate),
        referenceRps: round3(ref!.rate),
        ratio: round3(svc!.rate / ref!.rate),
        sameShapeRps: round3(same!.rate),
        sameShapeRatio: round3(svc!.rate / same!.rate),
      });
    }

    progress('reservations: low load (one user at a time), in rounds with both references');
    const lowRounds: NonNullable<ReservationsData['lowLoadRounds']> = [];
    let low: LifecycleResult | undefined;
    let refLow: ReferenceClientResult | undefined;
    let sameLow: ReferenceClientResult | undefined;
    for (let round = 0; round < 3; round++) {
      await ctx.settle(`low load round ${round + 1}`);
      const order = whos.map((_, i) => whos[(i + round + 2) % whos.length]!);
      for (const who of order) {
        const label = `low load round ${round + 1}`;
        if (who === 'service')
          low = await lifecycle(ctx, target.url, skus, 1, ctx.seconds(6), `${label} service`, `r${ctx.run}low${round}`);
        else if (who === 'reference')
          refLow = await reference('bare', 1, ctx.seconds(6), `${label} bare reference`, `ref-${ctx.run}-low${round}`);
        else
          sameLow = await reference(
            'same',
            1,
            ctx.seconds(6),
            `${label} same-shape reference`,
            `same-${ctx.run}-low${round}`,
          );
      }
      lowRounds.push({
        reserveP50Ms: round3(low!.reserve.p50),
        referenceReserveP50Ms: round3(refLow!.reserve.p50),
        ratio: round3(low!.reserve.p50 / refLow!.reserve.p50),
        sameShapeReserveP50Ms: round3(sameLow!.reserve.p50),
      });
    }

    const data: ReservationsData = {
      rps: round3(median(rounds.map((r) => r.rps))),
      referenceRps: round3(median(rounds.map((r) => r.referenceRps))),
      ratio: round3(median(rounds.map((r) => r.ratio))),
      sameShapeRps: round3(median(rounds.map((r) => r.sameShapeRps!))),
      sameShapeRatio: round3(median(rounds.map((r) => r.sameShapeRatio!))),
      reserveP50Ms: round3(svc!.reserve.p50),
      reserveP99Ms: round3(svc!.reserve.p99),
      commitP50Ms: round3(svc!.commit.p50),
      commitP99Ms: round3(svc!.commit.p99),
      lowLoadReserveP50Ms: round3(median(lowRounds.map((r) => r.reserveP50Ms))),
      lowLoadReferenceReserveP50Ms: round3(median(lowRounds.map((r) => r.referenceReserveP50Ms))),
      lowLoadReserveRatio: round3(median(lowRounds.map((r) => r.ratio))),
      lowLoadRounds: lowRounds,
      lowLoadSameShapeReserveP50Ms: round3(median(lowRounds.map((r) => r.sameShapeReserveP50Ms!))),
      lowLoadCommitP50Ms: round3(low!.commit.p50),
      users: SATURATION_USERS,
      rounds,
      latency: {
        reserve: svc!.reserve,
        commit: svc!.commit,
        referenceReserve: ref!.reserve,
        referenceCommit: ref!.commit,
        lowLoadReserve: low!.reserve,
        lowLoadCommit: low!.commit,
        referenceLowLoadReserve: refLow!.reserve,
        sameShapeReserve: same!.reserve,
        sameShapeCommit: same!.commit,
      },
      failures: svc!.failures,
      cpuMsPerLifecycle: {
        service: Object.fromEntries(Object.entries(cpu.service).map(([n, v]) => [n, round3(median(v))])),
        reference: Object.fromEntries(Object.entries(cpu.reference).map(([n, v]) => [n, round3(median(v))])),
        sameShape: Object.fromEntries(Object.entries(cpu.sameShape).map(([n, v]) => [n, round3(median(v))])),
      },
    };
    const failed = Object.values(svc!.failures).reduce((a, n) => a + n, 0);
    return {
      data,
      rows: reservationRows(data),
      failure: failed > 0 ? `reservations: ${failed} calls failed (${JSON.stringify(svc!.failures)})` : undefined,
    };
  } finally {
    await Promise.allSettled([refWorker.stop(), sameWorker.stop()]);
  }
}

export function reservationRows(d: ReservationsData): Row[] {
  // Results of runs before the reference's p50 was recorded on its own carry it in the latency summary.
  const lowLoadRef = d.lowLoadReferenceReserveP50Ms ?? d.latency.referenceLowLoadReserve.p50;
  const lowLoadRatio = d.lowLoadReserveRatio ?? d.lowLoadReserveP50Ms / lowLoadRef;
  return [
    {
      scenario: 'reservations',
      measure: `reserve → commit, ${d.users} users`,
      value: `${d.rps.toFixed(1)} /s`,
      reference: `${d.referenceRps.toFixed(1)} /s`,
      ratio: fmt.ratio(d.ratio),
      goal: `≥ ${RESERVATION_GOALS.ratio}× ref`,
      met: d.ratio >= RESERVATION_GOALS.ratio,
      note: 'reference: the bare workflow (one no-op local activity, one update)',
    },
    ...(d.sameShapeRatio !== undefined
      ? [
          {
            scenario: 'reservations',
            measure: `reserve → commit, ${d.users} users, vs same shape`,
            value: `${d.rps.toFixed(1)} /s`,
            reference: `${d.sameShapeRps!.toFixed(1)} /s`,
            ratio: fmt.ratio(d.sameShapeRatio),
            goal: `≥ ${RESERVATION_GOALS.sameShapeRatio}× ref`,
            met: d.sameShapeRatio >= RESERVATION_GOALS.sameShapeRatio,
            note: "reference: the service's workflow with no-I/O activities",
          } satisfies Row,
        ]
      : []),
    {
      scenario: 'reservations',
      measure: 'POST /v1/reservations p50 / p99',
      value: `${fmt.ms(d.reserveP50Ms)} / ${fmt.ms(d.reserveP99Ms)}`,
      reference: `${fmt.ms(d.latency.referenceReserve.p50)} / ${fmt.ms(d.latency.referenceReserve.p99)}`,
    },
    {
      scenario: 'reservations',
      measure: 'POST …/commit p50 / p99',
      value: `${fmt.ms(d.commitP50Ms)} / ${fmt.ms(d.commitP99Ms)}`,
      reference: `${fmt.ms(d.latency.referenceCommit.p50)} / ${fmt.ms(d.latency.referenceCommit.p99)}`,
    },
    {
      scenario: 'reservations',
      measure: 'POST /v1/reservations p50, low load',
      value: fmt.ms(d.lowLoadReserveP50Ms),
      reference: fmt.ms(lowLoadRef),
      ratio: fmt.ratio(lowLoadRatio),
      goal: `≤ ${RESERVATION_GOALS.lowLoadReserveRatio}× ref`,
      met: lowLoadRatio <= RESERVATION_GOALS.lowLoadReserveRatio,
      note: d.lowLoadRounds
        ? `median of ${d.lowLoadRounds.length} rounds: ${d.lowLoadRounds.map((r) => fmt.ratio(r.ratio)).join(', ')}` +
          (d.lowLoadSameShapeReserveP50Ms !== undefined
            ? `; same-shape floor ${fmt.ms(d.lowLoadSameShapeReserveP50Ms)}`
            : '')
        : undefined,
    },
  ];
}
