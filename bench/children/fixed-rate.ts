/**
 * Load generator child: an open-loop GET at a fixed rate over keep-alive connections. Requests
 * go out on schedule whether or not earlier ones have answered (no coordinated omission from a
 * closed loop). Latency is measured from the moment a request is handed to the HTTP client to its
 * last byte; `fromSchedule` adds how late the generator itself was (its timer runs every ~1 ms).
 */
import { performance } from 'node:perf_hooks';
import { Samples, summarize, type LatencySummary } from '../harness/stats';
import { call, keepAliveAgent } from './http';
import { serveJob } from './protocol';

export interface FixedRateJob {
  url: string;
  path: string;
  headers: Record<string, string>;
  rate: number;
  durationS: number;
  warmupS: number;
  maxSockets: number;
}

export interface FixedRateResult {
  sent: number;
  ok: number;
  failed: number;
  achievedRate: number;
  latency: LatencySummary;
  fromSchedule: LatencySummary;
}

serveJob<FixedRateJob, FixedRateResult>(async (job, progress) => {
  const base = new URL(job.url);
  const agent = keepAliveAgent(job.maxSockets);
  const latency = new Samples();
  const fromSchedule = new Samples();
  let ok = 0;
  let failed = 0;

  const phase = (seconds: number, record: boolean) =>
    new Promise<number>((resolve) => {
      const total = Math.round(job.rate * seconds);
      const interval = 1000 / job.rate;
      const t0 = performance.now();
      let sent = 0;
      let done = 0;
      let lastReport = t0;
      const finish = () => {
        if (sent === total && done === total) resolve((performance.now() - t0) / 1000);
      };
      const fire = (scheduled: number) => {
        call(agent, base, 'GET', job.path, job.headers).then(
          (answer) => {
            done += 1;
            if (record) {
              if (answer.status === 200) {
                ok += 1;
                latency.push(answer.ms);
                fromSchedule.push(performance.now() - scheduled);
              } else failed += 1;
            }
            finish();
          },
          () => {
            done += 1;
            if (record) failed += 1;
            finish();
          },
        );
      };
      const tick = () => {
        const now = performance.now();
        const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
        while (sent < due) fire(t0 + sent++ * interval);
        if (record && now - lastReport >= 2_000) {
          lastReport = now;
          progress(
            `${Math.round((now - t0) / 1000)} s: ${sent.toLocaleString('en-US')} sent, ${(sent - done).toLocaleString('en-US')} in flight`,
          );
        }
        if (sent < total) setTimeout(tick, 1);
      };
      tick();
    });

  await phase(job.warmupS, false);
  const seconds = await phase(job.durationS, true);
  agent.destroy();
  return {
    sent: ok + failed,
    ok,
    failed,
    achievedRate: (ok + failed) / seconds,
    latency: summarize(latency.values()),
    fromSchedule: summarize(fromSchedule.values()),
  };
});
