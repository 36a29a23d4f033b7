/**
 * Reference worker child: runs the bare reference workflow (reference/workflow.ts) on its own
 * task queue, with the service worker's cache and concurrency settings (src/worker.ts).
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { serveService } from './protocol';

export interface ReferenceWorkerConfig {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
}

serveService<ReferenceWorkerConfig, { taskQueue: string }>(async (config) => {
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    workflowsPath: require.resolve('../reference/workflow'),
    activities: { benchNoop: async () => undefined },
    maxCachedWorkflows: 10_000,
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    shutdownGraceTime: '2 seconds',
  });
  const running = worker.run();
  return {
    info: { taskQueue: config.taskQueue },
    async stop() {
      worker.shutdown();
      await running.catch(() => undefined);
      await connection.close();
    },
  };
});
