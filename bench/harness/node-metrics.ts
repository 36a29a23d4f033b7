/**
 * The service's own Prometheus metrics (prom-client's default Node.js metrics on GET /metrics):
 * garbage-collection pauses and event-loop delay during a window, to explain tail latency.
 * Scraping resets prom-client's event-loop-delay histogram, so scrape once before the window.
 */
export interface NodeMetrics {
  gcCount: number;
  gcSeconds: number;
  /** GC pauses of 10 ms or more (from the histogram's buckets). */
  gcOver10ms: number;
  eventLoopLagP99Ms: number;
  eventLoopLagMaxMs: number;
}

export async function scrapeNodeMetrics(url: string): Promise<NodeMetrics | undefined> {
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    const sum = (re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
    const one = (name: string) => Number(new RegExp(`^${name} ([0-9.eE+-]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    const count = sum(/^nodejs_gc_duration_seconds_count\{[^}]*\} ([0-9.eE+-]+)/gm);
    const under10 = sum(/^nodejs_gc_duration_seconds_bucket\{le="0\.01",[^}]*\} ([0-9.eE+-]+)/gm);
    return {
      gcCount: count,
      gcSeconds: sum(/^nodejs_gc_duration_seconds_sum\{[^}]*\} ([0-9.eE+-]+)/gm),
      gcOver10ms: count - under10,
      eventLoopLagP99Ms: one('nodejs_eventloop_lag_p99_seconds') * 1000,
      eventLoopLagMaxMs: one('nodejs_eventloop_lag_max_seconds') * 1000,
    };
  } catch {
    return undefined;
  }
}

/** What happened between two scrapes (GC totals are counters; the lag is the second scrape's window). */
export function nodeMetricsDelta(before: NodeMetrics | undefined, after: NodeMetrics | undefined, seconds: number) {
  if (!before || !after) return undefined;
  const r = (v: number) => Math.round(v * 100) / 100;
  return {
    gcPauses: after.gcCount - before.gcCount,
    gcPauseMsPerSecond: r(((after.gcSeconds - before.gcSeconds) * 1000) / seconds),
    gcPausesOver10ms: after.gcOver10ms - before.gcOver10ms,
    eventLoopLagP99Ms: r(after.eventLoopLagP99Ms),
    eventLoopLagMaxMs: r(after.eventLoopLagMaxMs),
  };
}
