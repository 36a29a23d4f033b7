/**
 * The worker's settings, from the configuration. The service's worker (src/worker.ts) and the
 * benchmark's reference workers (bench/children/reference-worker.ts) both take them from here, so
 * a floor measured beside the service runs on the service's own settings.
 */
import type { WorkerOptions } from '@temporalio/worker';
import type { Config } from '../config';

export function workerSettings(config: Pick<Config, 'workerMaxCachedWorkflows' | 'workerTuning'>) {
  return {
    // A cached workflow costs ~150 KB of worker memory (1.7 GB RSS at 10,000 live holds with a
    // 10,000 cache). A reservation mostly sleeps on its timer, and replaying its short history
    // when the timer fires is cheap, so the cache is kept small.
    maxCachedWorkflows: config.workerMaxCachedWorkflows,
    ...config.workerTuning,
    shutdownGraceTime: '10 seconds',
  } satisfies Partial<WorkerOptions>;
}
