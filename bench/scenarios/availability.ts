/**
 * Scenario 1, availability: GET /v1/skus/:sku through the whole middleware chain (metrics, request
 * logging, auth, validation, Redis read), next to a bare Express route returning constant JSON.
 *   (a) throughput with 100 connections (autocannon), in alternating rounds with the reference;
 *   (b) latency percentiles at a fixed 2,000 req/s (open loop), for the service and the reference.
 */
import type { AutocannonJob, AutocannonResult } from '../children/autocannon';
import type { FixedRateJob, FixedRateResult } from '../children/fixed-rate';
import { createSku } from '../harness/api';
import { cpuMeter } from '../harness/cpu';
import { nodeMetricsDelta, scrapeNodeMetrics } from '../harness/node-metrics';
import { detail, progress } from '../harness/progress';
import { runJob } from '../harness/procs';
import { median, round2, round3, type LatencySummary } from '../harness/stats';
import { fmt, type Context, type Outcome, type Row } from './types';

export const AVAILABILITY_GOALS = { throughputRatio: 0.75, p99RatioAt2000: 1.3 };
const CONNECTIONS = 100;
type Who = 'service' | 'reference';
const RATE = 2_000;
const WARMUP_S = 2;

export interface AvailabilityData {
  rps: number;
  referenceRps: number;
  ratio: number;
  p50MsAt2000: number;
  p99MsAt2000: number;
  p999MsAt2000: number;
  connections: number;
  rounds: { rps: number; referenceRps: number; ratio: number }[];
  /** API CPU time per request during a saturated round. */
  apiCpuPerRequestUs?: number;
  throughputLatency: { service: AutocannonResult['latency']; reference: AutocannonResult['latency'] };
  at2000: {
    service: LatencySummary;
    reference: LatencySummary;
    serviceFromSchedule: LatencySummary;
    achievedRate: number;
    failed: number;
    /** The API's CPU time per request at 2,000 req/s, and its GC pauses and event-loop delay then. */
    apiCpuPerRequestUs?: number;
    node?: ReturnType<typeof nodeMetricsDelta>;
  };
}

export async function throughput(url: string, path: string, token: string, durationS: number, label: string): Promise<AutocannonResult> {
  const job: AutocannonJob = { url: `${url}${path}`, connections: CONNECTIONS, durationS, headers: { authorization: `Bearer ${token}` } };
  const r = await runJob<AutocannonResult>('autocannon', job, { timeoutMs: (durationS + 30) * 1000, onProgress: (t) => detail(`${label}: ${t}`) });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${label}: ${r.non2xx} non-2xx answers and ${r.errors} errors`);
  return r;
}

export async function fixedRate(url: string, path: string, token: string, durationS: number, label: string): Promise<FixedRateResult> {
  const job: FixedRateJob = { url, path, headers: { authorization: `Bearer ${token}` }, rate: RATE, durationS, warmupS: WARMUP_S, maxSockets: 64 };
  const r = await runJob<FixedRateResult>('fixed-rate', job, { timeoutMs: (durationS + 40) * 1000, onProgress: (t) => detail(`${label}: ${t}`) });
  if (r.failed > 0) throw new Error(`${label}: ${r.failed} requests failed`);
  return r;
}

interface Measured {
  r: FixedRateResult;
  apiCpuPerRequestUs?: number;
  node?: ReturnType<typeof nodeMetricsDelta>;
}

/** A fixed-rate run with the API's CPU time and its GC / event-loop figures around it. */
async function measuredFixedRate(url: string, path: string, token: string, durationS: number, label: string, pid?: number): Promise<Measured> {
  const before = pid ? await scrapeNodeMetrics(url) : undefined;
  const meter = cpuMeter({ api: pid });
  const r = await fixedRate(url, path, token, durationS, label);
  const cpu = meter.stop();
  const after = pid ? await scrapeNodeMetrics(url) : undefined;
  const requests = RATE * (durationS + WARMUP_S);
  const node = nodeMetricsDelta(before, after, cpu.wallSeconds);
  detail(
    `${label}: p50 ${fmt.ms(r.latency.p50)}, p99 ${fmt.ms(r.latency.p99)}, p99.9 ${fmt.ms(r.latency.p999)}` +
      (cpu.seconds.api !== undefined ? `; API CPU ${Math.round((cpu.seconds.api / requests) * 1e6)} µs/request` : '') +
      (node ? `; GC ${node.gcPauseMsPerSecond} ms/s (${node.gcPausesOver10ms} pauses ≥ 10 ms), event-loop delay p99 ${node.eventLoopLagP99Ms} ms, max ${node.eventLoopLagMaxMs} ms` : '') +
      `; machine ${Math.round((cpu.machineBusy ?? 0) * 100)}% busy`,
  );
  return { r, apiCpuPerRequestUs: cpu.seconds.api === undefined ? undefined : Math.round((cpu.seconds.api / requests) * 1e6), node };
}

export async function availability(ctx: Context): Promise<Outcome<AvailabilityData>> {
  const { target } = ctx;
  const sku = `AVAIL-${ctx.run}`;
  await createSku(target, sku, 1_000, 'availability benchmark');
  const path = `/v1/skus/${sku}`;
  const ref = await ctx.referenceServer();
  const token = target.clientToken;
  const urls: Record<Who, string> = { service: target.url, reference: ref };
  const who: Who[] = ['reference', 'service'];

  progress(`availability (a): throughput, ${CONNECTIONS} connections, alternating with the bare Express reference`);
  for (const w of who) await throughput(urls[w], path, token, ctx.seconds(2), `warm-up ${w}`);
  const rounds: AvailabilityData['rounds'] = [];
  const last: Partial<Record<Who, AutocannonResult>> = {};
  let apiCpuPerRequestUs: number | undefined;
  for (let round = 0; round < 2; round++) {
    const order = round % 2 === 0 ? who : [...who].reverse();
    const got: Partial<Record<Who, AutocannonResult>> = {};
    for (const w of order) {
      const meter = cpuMeter({ api: w === 'service' ? target.apiPid : undefined });
      got[w] = await throughput(urls[w], path, token, ctx.seconds(8), `round ${round + 1} ${w}`);
      const cpu = meter.stop();
      if (w === 'service' && cpu.seconds.api !== undefined) apiCpuPerRequestUs = Math.round((cpu.seconds.api / got[w].requests) * 1e6);
      detail(`round ${round + 1} ${w}: ${fmt.int(got[w].rps)} req/s, p99 ${fmt.ms(got[w].latency.p99)}${cpu.seconds.api !== undefined ? `, API CPU ${Math.round((cpu.seconds.api / got[w].requests) * 1e6)} µs/request` : ''}, machine ${Math.round((cpu.machineBusy ?? 0) * 100)}% busy`);
    }
    const s = got.service!;
    const r = got.reference!;
    rounds.push({ rps: Math.round(s.rps), referenceRps: Math.round(r.rps), ratio: round3(s.rps / r.rps) });
    Object.assign(last, got);
  }

  progress(`availability (b): latency at a fixed ${fmt.int(RATE)} req/s (open loop, keep-alive)`);
  const svcM = await measuredFixedRate(target.url, path, token, ctx.seconds(15), 'service', target.apiPid);
  const svc = svcM.r;
  const refFixed = (await measuredFixedRate(ref, path, token, ctx.seconds(10), 'reference')).r;

  const data: AvailabilityData = {
    rps: Math.round(median(rounds.map((r) => r.rps))),
    referenceRps: Math.round(median(rounds.map((r) => r.referenceRps))),
    ratio: round3(median(rounds.map((r) => r.ratio))),
    p50MsAt2000: round3(svc.latency.p50),
    p99MsAt2000: round3(svc.latency.p99),
    p999MsAt2000: round3(svc.latency.p999),
    connections: CONNECTIONS,
    rounds,
    apiCpuPerRequestUs,
    throughputLatency: { service: last.service!.latency, reference: last.reference!.latency },
    at2000: {
      service: svc.latency,
      reference: refFixed.latency,
      serviceFromSchedule: svc.fromSchedule,
      achievedRate: round2(svc.achievedRate),
      failed: svc.failed,
      apiCpuPerRequestUs: svcM.apiCpuPerRequestUs,
      node: svcM.node,
    },
  };
  return { data, rows: availabilityRows(data) };
}

export function availabilityRows(d: AvailabilityData): Row[] {
  return [
    {
      scenario: 'availability',
      measure: `GET /v1/skus/:sku, ${d.connections} connections`,
      value: `${fmt.int(d.rps)} req/s`,
      reference: `${fmt.int(d.referenceRps)} req/s`,
      ratio: fmt.ratio(d.ratio),
      goal: `≥ ${AVAILABILITY_GOALS.throughputRatio}× ref`,
      met: d.ratio >= AVAILABILITY_GOALS.throughputRatio,
    },
    { scenario: 'availability', measure: 'p50 at 2,000 req/s', value: fmt.ms(d.p50MsAt2000), reference: fmt.ms(d.at2000.reference.p50) },
    {
      scenario: 'availability',
      measure: 'p99 at 2,000 req/s',
      value: fmt.ms(d.p99MsAt2000),
      reference: fmt.ms(d.at2000.reference.p99),
      ratio: fmt.ratio(d.p99MsAt2000 / d.at2000.reference.p99),
      goal: `≤ ${AVAILABILITY_GOALS.p99RatioAt2000}× ref`,
      met: d.p99MsAt2000 / d.at2000.reference.p99 <= AVAILABILITY_GOALS.p99RatioAt2000,
    },
    { scenario: 'availability', measure: 'p99.9 at 2,000 req/s', value: fmt.ms(d.p999MsAt2000), reference: fmt.ms(d.at2000.reference.p999) },
  ];
}
