/**
 * Load generator child: closed-loop throughput with autocannon (its programmatic API, in this
 * separate process). Every request must answer 2xx; the result counts what did not.
 */
import autocannon from 'autocannon';
import { serveJob } from './protocol';

export interface AutocannonJob {
  url: string;
  connections: number;
  durationS: number;
  headers: Record<string, string>;
  method?: string;
  body?: string;
  /** The status every answer must have (default: any 2xx). */
  expectStatus?: number;
}

export interface AutocannonResult {
  rps: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
  latency: {
    p50: number;
    p90: number;
    p99: number;
    p999: number;
    max: number;
    mean: number;
    curve: [number, number][];
  };
}

const CURVE_KEYS: [number, string][] = [
  [0, 'min'],
  [10, 'p10'],
  [25, 'p25'],
  [50, 'p50'],
  [75, 'p75'],
  [90, 'p90'],
  [97.5, 'p97_5'],
  [99, 'p99'],
  [99.9, 'p99_9'],
  [99.99, 'p99_99'],
  [100, 'max'],
];

serveJob<AutocannonJob, AutocannonResult>(async (job, progress) => {
  const instance = autocannon({
    url: job.url,
    connections: job.connections,
    duration: job.durationS,
    headers: job.body === undefined ? job.headers : { ...job.headers, 'content-type': 'application/json' },
    ...(job.method ? { method: job.method } : {}),
    ...(job.body !== undefined ? { body: job.body } : {}),
    timeout: 10,
  });
  let second = 0;
  void instance.on('tick', ({ counter }) => {
    second += 1;
    if (second % 2 === 0) progress(`${second} s: ${counter.toLocaleString('en-US')} req/s`);
  });
  const r = await instance;
  const total = Object.values(r.statusCodeStats ?? {}).reduce((a, s) => a + s.count, 0);
  const ok = job.expectStatus === undefined ? r['2xx'] : (r.statusCodeStats?.[String(job.expectStatus)]?.count ?? 0);
  return {
    rps: ok / r.duration,
    requests: ok,
    non2xx: total - ok,
    errors: r.errors,
    timeouts: r.timeouts,
    durationS: r.duration,
    latency: {
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      p999: r.latency.p99_9 ?? r.latency.max,
      max: r.latency.max,
      mean: r.latency.mean,
      curve: CURVE_KEYS.map(([p, key]) => [p, r.latency[key] ?? Number.NaN] as [number, number]),
    },
  };
});
