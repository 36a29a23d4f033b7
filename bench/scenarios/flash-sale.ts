/**
 * Scenario 2, flash sale: 10,000 buyers POST /v1/reservations at once for one unit of a SKU with
 * stock 1, then with stock 100, each buyer on a fresh connection (Node's fetch, in a separate
 * process). Exactly `stock` buyers must win (201) and Redis must show exactly `stock` reserved,
 * or the scenario fails loudly. The reference is the same storm from the same client against a
 * bare Express route that answers 409 from memory, run before and after the service's storms.
 */
import type { StormJob, StormResult } from '../children/storm';
import type { AutocannonJob, AutocannonResult } from '../children/autocannon';
import { cancelReservation, createSku, eachLimited, getStock } from '../harness/api';
import { detail, progress } from '../harness/progress';
import { cpuMeter } from '../harness/cpu';
import { runJob } from '../harness/procs';
import { round3, type LatencySummary } from '../harness/stats';
import { fmt, type Context, type Outcome, type Row } from './types';

export const FLASH_GOALS = { stock1Ratio: 1.5, stock100Ratio: 2.5 };
const BUYERS = 10_000;

export interface StormSummary {
  winners: number;
  wallS: number;
  ratio: number;
  loserP50Ms: number;
  loserP99Ms: number;
  statuses: Record<string, number>;
  errors: number;
  errorSamples: string[];
  reservedAfter: number;
  launchS: number;
  losers: LatencySummary;
  /** CPU seconds the API, the worker and the Temporal server used during the storm. */
  cpuSeconds?: Record<string, number>;
}

export interface FlashSaleData {
  buyers: number;
  referenceWallS: number;
  referenceRuns: { wallS: number; loserP50Ms: number; loserP99Ms: number; errors: number }[];
  referenceLosers: LatencySummary;
  stock1: StormSummary;
  stock100: StormSummary;
  /** 409s per second for a sold-out SKU over keep-alive connections, by API log level. */
  refusalsPerSecond?: { info: number; warn: number };
}

export async function storm(url: string, token: string, sku: string, label: string): Promise<StormResult> {
  const job: StormJob = { url: `${url}/v1/reservations`, headers: { authorization: `Bearer ${token}` }, buyers: BUYERS, sku };
  const r = await runJob<StormResult>('storm', job, { timeoutMs: 180_000, onProgress: (t) => detail(`${label}: ${t}`) });
  detail(
    `${label}: answered everyone in ${fmt.s(r.wallS)}; ${Object.entries(r.statuses).map(([s, n]) => `${fmt.int(n)}× ${s}`).join(', ')}` +
      `${r.errors ? `, ${r.errors} errors (${r.errorSamples[0]})` : ''}; losers p50 ${fmt.ms(r.losers.p50)}, p99 ${fmt.ms(r.losers.p99)}`,
  );
  return r;
}

/** Runs one storm against the service on a fresh SKU with `stock` units and checks the winners. */
export async function serviceStorm(ctx: Context, stock: number, label: string, referenceWallS: number): Promise<{ summary: StormSummary; failure?: string }> {
  const { target } = ctx;
  const sku = `FLASH${stock}-${label.replace(/\W+/g, '')}-${ctx.run}`.slice(0, 64);
  await createSku(target, sku, stock, `flash sale benchmark, stock ${stock}`);
  await ctx.settle(label);
  const meter = cpuMeter({ api: target.apiPid, worker: target.workerPid, temporal: target.temporalPid });
  const r = await storm(target.url, target.clientToken, sku, label);
  const cpu = meter.stop();
  detail(`${label}: CPU used: ${Object.entries(cpu.seconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}; machine ${Math.round((cpu.machineBusy ?? 0) * 100)}% busy`);
  const after = await getStock(target, sku);
  // Give the stock back so later scenarios see a quiet service.
  await eachLimited(r.winners, 16, (id) => cancelReservation(target, id));
  const summary: StormSummary = {
    winners: r.statuses['201'] ?? 0,
    wallS: round3(r.wallS),
    ratio: round3(r.wallS / referenceWallS),
    loserP50Ms: round3(r.losers.p50),
    loserP99Ms: round3(r.losers.p99),
    statuses: r.statuses,
    errors: r.errors,
    errorSamples: r.errorSamples,
    reservedAfter: after.reserved,
    launchS: round3(r.launchS),
    losers: r.losers,
    cpuSeconds: cpu.seconds,
  };
  // Winners must equal the stock (and Redis must agree): anything else fails the run loudly.
  // Buyers answered 503 or not at all are reported too, but they are a service-level problem,
  // not a broken invariant.
  const problems: string[] = [];
  if (summary.winners !== stock) problems.push(`${summary.winners} winners for a stock of ${stock}`);
  if (after.reserved !== stock) problems.push(`Redis shows ${after.reserved} reserved for a stock of ${stock}`);
  const others = Object.keys(r.statuses).filter((s) => s !== '201' && s !== '409');
  const unanswered = [
    ...others.map((s) => `${fmt.int(r.statuses[s]!)}× ${s}`),
    ...(r.errors > 0 ? [`${fmt.int(r.errors)} without an answer (${r.errorSamples[0]})`] : []),
  ];
  if (unanswered.length > 0) progress(`!!    ${label}: buyers not answered 201/409: ${unanswered.join(', ')}`);
  if (problems.length > 0) {
    const failure = `flash sale, stock ${stock} (${label}): ${problems.join('; ')}`;
    progress(`!!!!! FAILED: ${failure}`);
    return { summary, failure };
  }
  detail(`${label}: winners ${summary.winners} = stock ${stock}, Redis reserved ${after.reserved}: correct`);
  return { summary };
}

export async function flashSale(ctx: Context): Promise<Outcome<FlashSaleData>> {
  const { target } = ctx;
  const ref = await ctx.referenceServer();
  progress(`flash sale: ${fmt.int(BUYERS)} concurrent buyers per storm (reference, stock 1, stock 100, reference)`);
  const refRuns: StormResult[] = [];
  refRuns.push(await storm(ref, target.clientToken, 'REF', 'reference storm 1'));
  const refWall = () => refRuns.reduce((a, r) => a + r.wallS, 0) / refRuns.length;
  const s1 = await serviceStorm(ctx, 1, 'stock 1', refWall());
  const s100 = await serviceStorm(ctx, 100, 'stock 100', refWall());
  await ctx.settle('reference storm 2');
  refRuns.push(await storm(ref, target.clientToken, 'REF', 'reference storm 2'));
  const referenceWallS = round3(refWall());
  // Ratios against the mean of both reference storms.
  for (const s of [s1.summary, s100.summary]) s.ratio = round3(s.wallS / referenceWallS);
  const best = refRuns.reduce((a, b) => (a.losers.count >= b.losers.count ? a : b));
  const data: FlashSaleData = {
    buyers: BUYERS,
    referenceWallS,
    referenceRuns: refRuns.map((r) => ({ wallS: round3(r.wallS), loserP50Ms: round3(r.losers.p50), loserP99Ms: round3(r.losers.p99), errors: r.errors })),
    referenceLosers: best.losers,
    stock1: s1.summary,
    stock100: s100.summary,
  };
  const failures = [s1.failure, s100.failure];

  if (ctx.experiments && target.startApi) {
    // The logging cost of a refusal, without a storm's connection churn or Temporal in the way:
    // 409s for a sold-out SKU over 100 keep-alive connections, the service at its default level
    // (info: every 409 is a log line) against the same service at LOG_LEVEL=warn.
    progress('flash sale: logging cost of a refusal (keep-alive, 100 connections, sold-out SKU)');
    const soldOut = `SOLDOUT-${ctx.run}`;
    await createSku(target, soldOut, 0, 'flash sale benchmark, sold out');
    const warn = await target.startApi({ name: 'api-warn', logLevel: 'warn' });
    try {
      await ctx.settle('the refusal throughput');
      const refusals = async (url: string, label: string) => {
        const job: AutocannonJob = {
          url: `${url}/v1/reservations`,
          connections: 100,
          durationS: ctx.seconds(6),
          headers: { authorization: `Bearer ${target.clientToken}` },
          method: 'POST',
          body: JSON.stringify({ items: [{ sku: soldOut, quantity: 1 }] }),
          expectStatus: 409,
        };
        const r = await runJob<AutocannonResult>('autocannon', job, { timeoutMs: 60_000 });
        detail(`${label}: ${fmt.int(r.rps)} refusals/s${r.non2xx || r.errors ? ` (${r.non2xx} other answers, ${r.errors} errors)` : ''}`);
        return r.rps;
      };
      const info = [await refusals(target.url, 'LOG_LEVEL=info (default)'), 0];
      const quiet = [await refusals(warn.url, 'LOG_LEVEL=warn'), 0];
      info[1] = await refusals(target.url, 'LOG_LEVEL=info (default), again');
      quiet[1] = await refusals(warn.url, 'LOG_LEVEL=warn, again');
      const mean = (v: number[]) => Math.round((v[0]! + v[1]!) / 2);
      data.refusalsPerSecond = { info: mean(info), warn: mean(quiet) };
      ctx.experiment('flashSale', {
        change: 'API LOG_LEVEL=warn instead of info (every 409 is an info line)',
        measure: 'refusals/s, keep-alive, sold-out SKU',
        before: data.refusalsPerSecond.info,
        after: data.refusalsPerSecond.warn,
        unit: '/s',
      });
    } finally {
      await warn.stop();
    }
  }
  const failure = failures.filter(Boolean).join('; ') || undefined;
  return { data, rows: flashSaleRows(data), failure };
}

/** Buyers answered neither 201 nor 409 (e.g. 503 when Temporal did not answer in time), or not at all. */
function unansweredOf(s: StormSummary): string {
  const other = Object.entries(s.statuses).filter(([code]) => code !== '201' && code !== '409');
  return [...other.map(([code, n]) => `${fmt.int(n)}× ${code}`), ...(s.errors ? [`${fmt.int(s.errors)} no answer`] : [])].join(', ');
}

export function flashSaleRows(d: FlashSaleData): Row[] {
  const refLoser = d.referenceRuns;
  const refP50 = refLoser.reduce((a, r) => a + r.loserP50Ms, 0) / refLoser.length;
  const refP99 = refLoser.reduce((a, r) => a + r.loserP99Ms, 0) / refLoser.length;
  const rows: Row[] = [];
  for (const [stock, s, goal] of [
    [1, d.stock1, FLASH_GOALS.stock1Ratio],
    [100, d.stock100, FLASH_GOALS.stock100Ratio],
  ] as const) {
    rows.push(
      {
        scenario: 'flash sale',
        measure: `stock ${stock}: wall time, ${fmt.int(d.buyers)} buyers`,
        value: fmt.s(s.wallS),
        reference: fmt.s(d.referenceWallS),
        ratio: fmt.ratio(s.ratio),
        goal: `≤ ${goal}× ref`,
        met: s.ratio <= goal,
      },
      {
        scenario: 'flash sale',
        measure: `stock ${stock}: winners`,
        value: String(s.winners),
        goal: `= ${stock}`,
        met: s.winners === stock && s.reservedAfter === stock,
        note: unansweredOf(s) || undefined,
      },
      { scenario: 'flash sale', measure: `stock ${stock}: loser p50 / p99`, value: `${fmt.ms(s.loserP50Ms)} / ${fmt.ms(s.loserP99Ms)}`, reference: `${fmt.ms(refP50)} / ${fmt.ms(refP99)}` },
    );
  }
  return rows;
}
