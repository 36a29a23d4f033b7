/**
 * The worker: runs reservationWorkflow and the reconcilerWorkflow with their activities on the
 * task queue. `node lib/worker.js` (the service's main command starts it as a child process).
 */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities';
import { createReconcilerActivities } from './activities/reconciler';
import { loadConfigOrExit, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { createStock, type StockClients } from './stock';
import { connectClient } from './temporal';

export interface RunningWorker {
  worker: Worker;
  stock: StockClients;
  run: Promise<void>;
}

/** Creates a worker over real Redis/PostgreSQL clients; `options` lets tests pass a pre-built bundle. */
export async function createWorker(
  config: Config,
  options: Partial<WorkerOptions> = {},
  logger: Logger = createLogger(config.logLevel, 'stockhold-worker'),
): Promise<RunningWorker> {
  const stock = createStock(config);
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  // The reconciler asks Temporal whether a reservation's workflow still runs.
  const temporal = await connectClient(config.temporalAddress, config.temporalNamespace);
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    ...(options.workflowBundle ? {} : { workflowsPath: require.resolve('./workflows') }),
    activities: {
      ...createActivities(stock.stock),
      ...createReconcilerActivities({ stock: stock.stock, temporal, logger, settings: config.reconcile }),
    },
    // A cached workflow costs ~150 KB of worker memory (1.7 GB RSS at 10,000 live holds with a
    // 10,000 cache). A reservation mostly sleeps on its timer, and replaying its short history
    // when the timer fires is cheap, so the cache is kept small.
    maxCachedWorkflows: config.workerMaxCachedWorkflows,
    maxConcurrentActivityTaskExecutions: 200,
    maxConcurrentLocalActivityExecutions: 200,
    shutdownGraceTime: '10 seconds',
    ...options,
  });
  const run = worker.run().finally(async () => {
    await stock.close();
    await temporal.connection.close();
    await connection.close();
  });
  return { worker, stock, run };
}

if (require.main === module) {
  const config = loadConfigOrExit();
  const log = createLogger(config.logLevel, 'stockhold-worker');
  createWorker(config, {}, log)
    .then(async ({ run }) => {
      log.info({ taskQueue: config.taskQueue, namespace: config.temporalNamespace, address: config.temporalAddress }, 'worker running');
      await run;
      log.info('worker stopped');
    })
    .catch((err: unknown) => {
      log.error({ err }, 'worker failed');
      process.exit(1);
    });
}
