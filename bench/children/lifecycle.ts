/**
 * Load generator child for the reservation path, over keep-alive HTTP:
 *   - "lifecycle": a closed loop of `concurrency` users, each doing POST /v1/reservations (201
 *     HELD) then POST /v1/reservations/:id/commit (200 COMMITTED), for `durationS` after a warm-up;
 *   - "reserve": creates `count` reservations `${idPrefix}-<i>` (the memory scenario's live holds);
 *   - "cancel": cancels them again (when the benchmark used a running stack).
 */
import { performance } from 'node:perf_hooks';
import { Samples, summarize, type LatencySummary } from '../harness/stats';
import { call, keepAliveAgent } from './http';
import { serveJob } from './protocol';

export interface LifecycleJob {
  mode: 'lifecycle' | 'reserve' | 'cancel';
  url: string;
  headers: Record<string, string>;
  concurrency: number;
  skus: string[];
  idPrefix: string;
  ttlSeconds: number;
  /** lifecycle mode */
  durationS?: number;
  warmupS?: number;
  /** reserve / cancel modes */
  count?: number;
}

export interface LifecycleResult {
  /** Lifecycles (or reservations, or cancels) that succeeded in the measured window. */
  completed: number;
  rate: number;
  seconds: number;
  reserve: LatencySummary;
  commit: LatencySummary;
  failures: Record<string, number>;
  failureSamples: string[];
  /** The loop mode only: this load generator's own CPU per lifecycle over the measured seconds (its HTTP client). */
  clientCpuMsPerLifecycle?: number;
}

serveJob<LifecycleJob, LifecycleResult>(async (job, progress) => {
  const base = new URL(job.url);
  const agent = keepAliveAgent(job.concurrency);
  const headers = job.headers;
  const reserve = new Samples();
  const commit = new Samples();
  const failures: Record<string, number> = {};
  const failureSamples: string[] = [];
  let completed = 0;
  let recording = false;
  let seq = 0;

  const fail = (what: string, status: number | string, text: string) => {
    const key = `${what} ${status}`;
    failures[key] = (failures[key] ?? 0) + 1;
    if (failureSamples.length < 5) failureSamples.push(`${key}: ${text.slice(0, 300)}`);
  };
  const reserveOne = async (i: number): Promise<string | undefined> => {
    const reservationId = `${job.idPrefix}-${i}`;
    const body = JSON.stringify({
      reservationId,
      items: [{ sku: job.skus[i % job.skus.length]!, quantity: 1 }],
      ttlSeconds: job.ttlSeconds,
    });
    try {
      const a = await call(agent, base, 'POST', '/v1/reservations', headers, body);
      if (a.status !== 201) return void fail('reserve', a.status, a.text);
      if (recording) reserve.push(a.ms);
      return reservationId;
    } catch (err) {
      return void fail('reserve', 'error', String(err));
    }
  };
  const settleOne = async (id: string, action: 'commit' | 'cancel'): Promise<boolean> => {
    try {
      const a = await call(
        agent,
        base,
        'POST',
        `/v1/reservations/${id}/${action}`,
        headers,
        JSON.stringify(action === 'commit' ? { paymentId: `pay-${id}` } : { reason: 'benchmark cleanup' }),
      );
      if (a.status !== 200) return (fail(action, a.status, a.text), false);
      if (recording) commit.push(a.ms);
      return true;
    } catch (err) {
      return (fail(action, 'error', String(err)), false);
    }
  };

  const reporter = (label: string, t0: number) =>
    setInterval(
      () => progress(`${Math.round((performance.now() - t0) / 1000)} s: ${completed.toLocaleString('en-US')} ${label}`),
      2_000,
    );

  if (job.mode === 'lifecycle') {
    const users = async (until: number) => {
      await Promise.all(
        Array.from({ length: job.concurrency }, async () => {
          while (performance.now() < until) {
            const id = await reserveOne(seq++);
            if (id && (await settleOne(id, 'commit')) && recording && performance.now() <= until) completed += 1;
          }
        }),
      );
    };
    await users(performance.now() + (job.warmupS ?? 0) * 1000);
    recording = true;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const timer = reporter('lifecycles', t0);
    await users(t0 + (job.durationS ?? 10) * 1000);
    const cpu = process.cpuUsage(cpu0);
    clearInterval(timer);
    const seconds = job.durationS ?? 10;
    agent.destroy();
    return {
      completed,
      rate: completed / seconds,
      seconds,
      reserve: summarize(reserve.values()),
      commit: summarize(commit.values()),
      failures,
      failureSamples,
      clientCpuMsPerLifecycle: (cpu.user + cpu.system) / 1000 / Math.max(1, completed),
    };
  }

  // reserve / cancel a fixed set of ids
  recording = true;
  const total = job.count ?? 0;
  const t0 = performance.now();
  const timer = reporter(job.mode === 'reserve' ? 'held' : 'cancelled', t0);
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      for (let i = seq++; i < total; i = seq++) {
        const ok =
          job.mode === 'reserve'
            ? (await reserveOne(i)) !== undefined
            : await settleOne(`${job.idPrefix}-${i}`, 'cancel');
        if (ok) completed += 1;
      }
    }),
  );
  clearInterval(timer);
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  return {
    completed,
    rate: completed / seconds,
    seconds,
    reserve: summarize(reserve.values()),
    commit: summarize(commit.values()),
    failures,
    failureSamples,
  };
});
