/**
 * Reference worker child: runs a reference on its own task queue with the service worker's
 * settings (src/temporal/worker-settings.ts, from the same environment: WORKER_* variables) and
 * connection options. `shape`:
 *   - `bare`: the bare workflow (reference/workflow.ts): one no-op local activity, one update;
 *   - `same`: the service's own reservationWorkflow with activities that do no I/O
 *     (reference/same-shape.ts): the reservation's Temporal shape, nothing else.
 * Its Runtime is the service worker's (the SDK's default logger), with no shutdown signals.
 */
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { temporalConnectionOptions } from '../../src/temporal/connection';
import { workerSettings } from '../../src/temporal/worker-settings';
import { noIoActivities } from '../reference/same-shape';
import { serveService } from './protocol';

export type ReferenceShape = 'bare' | 'same';

export interface ReferenceWorkerConfig {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  shape: ReferenceShape;
}

serveService<ReferenceWorkerConfig, { taskQueue: string }>(async (job) => {
  Runtime.install({ shutdownSignals: [] });
  const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: job.temporalAddress });
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const worker = await Worker.create({
    connection,
    namespace: job.namespace,
    taskQueue: job.taskQueue,
    ...(job.shape === 'same'
      ? { workflowsPath: require.resolve('../../src/workflows'), activities: noIoActivities() }
      : { workflowsPath: require.resolve('../reference/workflow'), activities: { benchNoop: async () => undefined } }),
    ...workerSettings(config),
    shutdownGraceTime: '2 seconds',
  });
  const running = worker.run();
  return {
    info: { taskQueue: job.taskQueue },
    async stop() {
      worker.shutdown();
      await running.catch(() => undefined);
      await connection.close();
    },
  };
});
