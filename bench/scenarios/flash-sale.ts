/**
 * Scenario 2, flash sale: 10,000 buyers POST /v1/reservations at once for one unit of a SKU with
 * stock 1, then with stock 100, each buyer on a fresh connection (Node's fetch, in a separate
 * process). Exactly `stock` buyers must win (201) and Redis must show exactly `stock` reserved,
 * or the scenario fails loudly. The reference is the same storm from the same client against a
 * bare Express route that answers 409 from memory, run before and after the service's storms.
 *
 * The same two storms then go through the service's other shape: two API processes
 * (`node lib/api/server.js` each on its own port, buyers alternating between them as a
 * round-robin balancer would send them) and their own worker, on a private 3-master Redis
 * Cluster (REDIS_CLUSTER_NODES; started like the tests' one, test/helpers/redis-cluster.ts) and
 * their own database, on the same Temporal server, between the same two reference storms.
 *
 * With --baseline REV, this build and REV's (bench/harness/revision.ts) each run as a shape of
 * one API process and a worker on a private redis-server and a database of their own, and both
 * storms run on each in the order this, REV, REV, this: an experiment "this build vs REV".
 */
import type { StormJob, StormResult } from '../children/storm';
import type { AutocannonJob, AutocannonResult } from '../children/autocannon';
import { startRedisCluster, type RedisCluster } from '../../test/helpers/redis-cluster';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server';
import { cancelReservation, createSku, eachLimited, getStock } from '../harness/api';
import { detail, progress } from '../harness/progress';
import { cpuMeter, waitUntilQuiet } from '../harness/cpu';
import { runJob } from '../harness/procs';
import { BENCH_SHAPE_DATABASE_URL, type ShapeHandle, type Target } from '../harness/stack';
import { round3, type LatencySummary } from '../harness/stats';
import { fmt, type Context, type Outcome, type Row } from './types';

export const FLASH_GOALS = { stock1Ratio: 1.2, stock100Ratio: 1.4, clusterRatio: 1.5 };
const BUYERS = 10_000;
const CLUSTER_APIS = 2;
const CLUSTER_MASTERS = 3;

export interface StormSummary {
  /** Buyers holding at the end: 201s, and those whose retry after a 503 found their hold. */
  winners: number;
  /** Buyers first answered 503, who tried again with the reservation id it carried. */
  retried503?: number;
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
  referenceRuns: {
    wallS: number;
    loserP50Ms: number;
    loserP99Ms: number;
    errors: number;
    /** The bare reference server's CPU seconds during the storm (the API's counterpart). */
    cpuSeconds?: number;
  }[];
  referenceLosers: LatencySummary;
  stock1: StormSummary;
  stock100: StormSummary;
  /** The same storms through CLUSTER_APIS API processes on a Redis Cluster (absent when it could not start: clusterError). */
  cluster?: { apiProcesses: number; masters: number; stock1: StormSummary; stock100: StormSummary };
  clusterError?: string;
  /** With --baseline: the two storms' wall seconds on this build and on the baseline revision, same shape, same run. */
  baseline?: {
    rev: string;
    stock1: { current: number[]; baseline: number[] };
    stock100: { current: number[]; baseline: number[] };
  };
  /** 409s per second for a sold-out SKU over keep-alive connections, by API log level. */
  refusalsPerSecond?: { info: number; warn: number };
}

export async function storm(url: string | string[], token: string, sku: string, label: string): Promise<StormResult> {
  const urls = (Array.isArray(url) ? url : [url]).map((u) => `${u}/v1/reservations`);
  const job: StormJob = { urls, headers: { authorization: `Bearer ${token}` }, buyers: BUYERS, sku };
  const r = await runJob<StormResult>('storm', job, {
    timeoutMs: 180_000,
    onProgress: (t) => detail(`${label}: ${t}`),
  });
  detail(
    `${label}: answered everyone in ${fmt.s(r.wallS)}; ${Object.entries(r.statuses)
      .map(([s, n]) => `${fmt.int(n)}× ${s}`)
      .join(', ')}` +
      `${r.errors ? `, ${r.errors} errors (${r.errorSamples[0]})` : ''}; losers p50 ${fmt.ms(r.losers.p50)}, p99 ${fmt.ms(r.losers.p99)}`,
  );
  for (const sample of r.otherSamples) detail(`${label}: answered ${sample}`);
  return r;
}

/** Where a storm goes: the main stack, or another shape of the service (its API URLs and processes). */
interface StormTarget {
  /** For the set-up calls (SKU, stock, cancels): an API of this shape. */
  target: Target;
  urls: string[];
  /** The processes whose CPU the storm reports, by name. */
  pids: Record<string, number | undefined>;
  settle(label: string): Promise<void>;
}

function mainStormTarget(ctx: Context): StormTarget {
  const { target } = ctx;
  return {
    target,
    urls: [target.url],
    pids: { api: target.apiPid, worker: target.workerPid, temporal: target.temporalPid },
    settle: (label) => ctx.settle(label),
  };
}

function shapeStormTarget(ctx: Context, shape: ShapeHandle, redisNodes: readonly { pid: number }[]): StormTarget {
  const { target } = ctx;
  const pids: Record<string, number | undefined> = { temporal: target.temporalPid, worker: shape.workerPid };
  shape.apiPids.forEach((pid, i) => (pids[`api-${i + 1}`] = pid));
  redisNodes.forEach((n, i) => (pids[`redis-${i + 1}`] = n.pid));
  return {
    target: { ...target, url: shape.urls[0]!, apiPid: shape.apiPids[0], workerPid: shape.workerPid },
    urls: shape.urls,
    pids,
    async settle(label) {
      const waited = await waitUntilQuiet(Object.values(pids));
      if (waited > 3) progress(`    waited ${waited.toFixed(0)} s for the stack to be quiet before ${label}`);
    },
  };
}

/** Runs one storm against the service on a fresh SKU with `stock` units and checks the winners. */
async function serviceStorm(
  ctx: Context,
  where: StormTarget,
  stock: number,
  label: string,
  referenceWallS: number,
): Promise<{ summary: StormSummary; failure?: string }> {
  const { target } = where;
  const sku = `FLASH${stock}-${label.replace(/\W+/g, '')}-${ctx.run}`.slice(0, 64);
  await createSku(target, sku, stock, `flash sale benchmark, stock ${stock}`);
  await where.settle(label);
  const meter = cpuMeter(where.pids);
  const r = await storm(where.urls, target.clientToken, sku, label);
  const cpu = meter.stop();
  detail(
    `${label}: CPU used: ${Object.entries(cpu.seconds)
      .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
      .join(', ')}; machine ${Math.round((cpu.machineBusy ?? 0) * 100)}% busy`,
  );
  const after = await getStock(target, sku);
  // Give the stock back so later scenarios see a quiet service.
  await eachLimited(r.winners, 16, (id) => cancelReservation(target, id));
  const summary: StormSummary = {
    // 201s, and buyers whose retry after a 503 found their hold (200 HELD).
    winners: r.winners.length,
    retried503: r.retried,
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
  if (r.retried > 0)
    progress(`      ${label}: ${fmt.int(r.retried)} buyers answered 503 tried again with the id it carried`);
  const others = Object.keys(r.statuses).filter((s) => s !== '201' && s !== '409' && s !== '200');
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

/** The private Redis Cluster and the service's second shape on it; undefined (and why) when they could not start. */
async function startClusterShape(
  ctx: Context,
): Promise<{ shape: ShapeHandle; cluster: RedisCluster } | { error: string }> {
  if (!ctx.target.startShape) return { error: 'needs the benchmark’s own stack' };
  let cluster: RedisCluster | undefined;
  try {
    detail(`Redis Cluster: ${CLUSTER_MASTERS} masters from the system redis-server on spare ports`);
    cluster = await startRedisCluster(CLUSTER_MASTERS);
    detail(`Redis Cluster up: ${cluster.seeds}`);
    const shape = await ctx.target.startShape({
      name: 'cluster',
      apis: CLUSTER_APIS,
      redisClusterNodes: cluster.seeds,
      databaseUrl: BENCH_SHAPE_DATABASE_URL,
    });
    return { shape, cluster };
  } catch (err) {
    await cluster?.stop();
    const error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    progress(`!!    flash sale on Redis Cluster: could not start it: ${error}`);
    return { error };
  }
}

export async function flashSale(ctx: Context): Promise<Outcome<FlashSaleData>> {
  const { target } = ctx;
  const ref = await ctx.referenceServer();
  progress(
    `flash sale: starting ${CLUSTER_APIS} API processes and a worker on a private ${CLUSTER_MASTERS}-master Redis Cluster`,
  );
  const clustered = await startClusterShape(ctx);
  progress(
    `flash sale: ${fmt.int(BUYERS)} concurrent buyers per storm (reference, stock 1, stock 100, on Redis Cluster stock 1 and 100, reference)`,
  );
  const refRuns: (StormResult & { cpuSeconds?: number })[] = [];
  // The bare-409 storm, its server's CPU measured as the API's is in serviceStorm: the two side by
  // side say what a refused buyer costs the service beyond Node's HTTP and Express's own.
  const referenceStorm = async (label: string) => {
    const meter = cpuMeter({ reference: ctx.referenceServerPid() });
    const r = await storm(ref, target.clientToken, 'REF', label);
    const cpuSeconds = meter.stop().seconds.reference;
    if (cpuSeconds !== undefined)
      detail(
        `${label}: reference server CPU ${cpuSeconds.toFixed(1)} s, ${Math.round((cpuSeconds / BUYERS) * 1e6)} µs per buyer`,
      );
    return { ...r, cpuSeconds };
  };
  const failures: (string | undefined)[] = [];
  let s1: StormSummary;
  let s100: StormSummary;
  let cluster: FlashSaleData['cluster'];
  try {
    await ctx.settle('reference storm 1');
    refRuns.push(await referenceStorm('reference storm 1'));
    const refWall = () => refRuns.reduce((a, r) => a + r.wallS, 0) / refRuns.length;
    const main = mainStormTarget(ctx);
    const one = await serviceStorm(ctx, main, 1, 'stock 1', refWall());
    const hundred = await serviceStorm(ctx, main, 100, 'stock 100', refWall());
    failures.push(one.failure, hundred.failure);
    [s1, s100] = [one.summary, hundred.summary];
    if ('shape' in clustered) {
      const where = shapeStormTarget(ctx, clustered.shape, clustered.cluster.nodes);
      const c1 = await serviceStorm(ctx, where, 1, `cluster stock 1`, refWall());
      const c100 = await serviceStorm(ctx, where, 100, `cluster stock 100`, refWall());
      failures.push(c1.failure, c100.failure);
      cluster = { apiProcesses: CLUSTER_APIS, masters: CLUSTER_MASTERS, stock1: c1.summary, stock100: c100.summary };
    }
  } finally {
    if ('shape' in clustered) {
      await clustered.shape.stop();
      await clustered.cluster.stop();
    }
  }
  await ctx.settle('reference storm 2');
  refRuns.push(await referenceStorm('reference storm 2'));
  const referenceWallS = round3(refRuns.reduce((a, r) => a + r.wallS, 0) / refRuns.length);
  // Ratios against the mean of both reference storms.
  for (const s of [s1, s100, cluster?.stock1, cluster?.stock100]) if (s) s.ratio = round3(s.wallS / referenceWallS);
  const best = refRuns.reduce((a, b) => (a.losers.count >= b.losers.count ? a : b));
  const data: FlashSaleData = {
    buyers: BUYERS,
    referenceWallS,
    referenceRuns: refRuns.map((r) => ({
      wallS: round3(r.wallS),
      loserP50Ms: round3(r.losers.p50),
      loserP99Ms: round3(r.losers.p99),
      errors: r.errors,
      cpuSeconds: r.cpuSeconds,
    })),
    referenceLosers: best.losers,
    stock1: s1,
    stock100: s100,
    cluster,
    clusterError: 'error' in clustered ? clustered.error : undefined,
  };

  if (ctx.baseline && target.startShape) {
    const compared = await baselineStorms(ctx, referenceWallS);
    failures.push(...compared.failures);
    data.baseline = compared.data;
  }

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
        detail(
          `${label}: ${fmt.int(r.rps)} refusals/s${r.non2xx || r.errors ? ` (${r.non2xx} other answers, ${r.errors} errors)` : ''}`,
        );
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

/**
 * This build against the --baseline revision, same shape (one API, a worker, a private
 * redis-server, a database of its own each), both storms on each in the order this, REV, REV,
 * this, so drift of the machine during the comparison falls on both alike.
 */
async function baselineStorms(
  ctx: Context,
  referenceWallS: number,
): Promise<{ data: NonNullable<FlashSaleData['baseline']>; failures: string[] }> {
  const base = ctx.baseline!;
  progress(
    `flash sale: this build against ${base.rev} (${base.commit}), one API process each on a private redis-server`,
  );
  const servers: RedisServer[] = [];
  const shapes: ShapeHandle[] = [];
  const failures: string[] = [];
  const data: NonNullable<FlashSaleData['baseline']> = {
    rev: base.commit,
    stock1: { current: [], baseline: [] },
    stock100: { current: [], baseline: [] },
  };
  try {
    const side = async (name: 'current' | 'baseline') => {
      const redis = await startRedisServer();
      servers.push(redis);
      const shape = await ctx.target.startShape!({
        name,
        apis: 1,
        redisUrl: redis.url,
        databaseUrl: `postgres://postgres@127.0.0.1:5432/stockhold_bench_${name}`,
        ...(name === 'baseline' ? { lib: base.lib } : {}),
      });
      shapes.push(shape);
      return shapeStormTarget(ctx, shape, [redis]);
    };
    const sides = { current: await side('current'), baseline: await side('baseline') };
    for (const stock of [1, 100] as const) {
      const runs = { current: 0, baseline: 0 };
      for (const name of ['current', 'baseline', 'baseline', 'current'] as const) {
        // Each storm's label names its SKU, so the second storm of a side needs its own.
        const label = `${name === 'current' ? 'this build' : base.commit} stock ${stock} run ${++runs[name]}`;
        const r = await serviceStorm(ctx, sides[name], stock, label, referenceWallS);
        if (r.failure) failures.push(r.failure);
        data[stock === 1 ? 'stock1' : 'stock100'][name].push(r.summary.wallS);
      }
      const mean = (v: number[]) => round3(v.reduce((a, b) => a + b, 0) / v.length);
      const figures = data[stock === 1 ? 'stock1' : 'stock100'];
      ctx.experiment('flashSale', {
        change: `this build instead of ${base.rev} (${base.commit})`,
        measure: `flash sale stock ${stock}, ${fmt.int(BUYERS)} buyers, wall s (mean of 2, one API)`,
        before: mean(figures.baseline),
        after: mean(figures.current),
        unit: 's',
      });
    }
  } finally {
    for (const shape of shapes) await shape.stop();
    for (const server of servers) await server.stop();
  }
  return { data, failures };
}

/** Buyers answered neither 201 nor 409 (e.g. 503 when Temporal did not answer in time), or not at all. */
function unansweredOf(s: StormSummary): string {
  const other = Object.entries(s.statuses).filter(([code]) => code !== '201' && code !== '409');
  return [
    ...other.map(([code, n]) => `${fmt.int(n)}× ${code}`),
    ...(s.errors ? [`${fmt.int(s.errors)} no answer`] : []),
  ].join(', ');
}

export function flashSaleRows(d: FlashSaleData): Row[] {
  const refLoser = d.referenceRuns;
  const refP50 = refLoser.reduce((a, r) => a + r.loserP50Ms, 0) / refLoser.length;
  const refP99 = refLoser.reduce((a, r) => a + r.loserP99Ms, 0) / refLoser.length;
  const rows: Row[] = [];
  const storms: [string, number, StormSummary, number][] = [
    ['', 1, d.stock1, FLASH_GOALS.stock1Ratio],
    ['', 100, d.stock100, FLASH_GOALS.stock100Ratio],
  ];
  const shape = d.cluster
    ? `Redis Cluster (${d.cluster.masters} masters), ${d.cluster.apiProcesses} API processes, `
    : '';
  if (d.cluster)
    storms.push(
      [shape, 1, d.cluster.stock1, FLASH_GOALS.clusterRatio],
      [shape, 100, d.cluster.stock100, FLASH_GOALS.clusterRatio],
    );
  for (const [prefix, stock, s, goal] of storms) {
    rows.push(
      {
        scenario: 'flash sale',
        measure: `${prefix}stock ${stock}: wall time, ${fmt.int(d.buyers)} buyers`,
        value: fmt.s(s.wallS),
        reference: fmt.s(d.referenceWallS),
        ratio: fmt.ratio(s.ratio),
        goal: `≤ ${goal}× ref`,
        met: s.ratio <= goal,
      },
      {
        scenario: 'flash sale',
        measure: `${prefix}stock ${stock}: winners`,
        value: String(s.winners),
        goal: `= ${stock}`,
        met: s.winners === stock && s.reservedAfter === stock,
        note: unansweredOf(s) || undefined,
      },
      {
        scenario: 'flash sale',
        measure: `${prefix}stock ${stock}: loser p50 / p99`,
        value: `${fmt.ms(s.loserP50Ms)} / ${fmt.ms(s.loserP99Ms)}`,
        reference: `${fmt.ms(refP50)} / ${fmt.ms(refP99)}`,
      },
    );
  }
  if (d.clusterError)
    rows.push({
      scenario: 'flash sale',
      measure: 'Redis Cluster, 2 API processes',
      value: 'not run',
      goal: `≤ ${FLASH_GOALS.clusterRatio}× ref`,
      met: false,
      note: d.clusterError,
    });
  return rows;
}
