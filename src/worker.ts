/**
 * The worker: runs reservationWorkflow, the reconcilerWorkflow and the webhookDispatcherWorkflow with their activities on the
 * task queue. `node lib/worker.js` (the service's main command starts it as a child process).
 */
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities';
import { createReconcilerActivities } from './reconciler/activities';
import { createWebhookActivities } from './webhooks/activities';
import { DeliveryQueue } from './webhooks/queue';
import { loadConfigOrExit, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { reportReady, supervisedAs, takeShutdownSignals } from './processes/child';
import { createStock, type StockClients } from './stock';
import { connectClient, temporalConnectionOptions } from './temporal/connection';
import { workerSettings } from './temporal/worker-settings';

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
  const stock = createStock(config, {
    warn: (message, fields) => logger.warn(fields, message),
    alert: (message, fields) => logger.error(fields, message),
  });
  // The same TLS and API key as every other connection of the service (src/temporal/).
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  // The reconciler asks Temporal whether a reservation's workflow still runs.
  const temporal = await connectClient(config);
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    ...(options.workflowBundle ? {} : { workflowsPath: require.resolve('./workflows') }),
    activities: {
      ...createActivities(stock.stock),
      ...createReconcilerActivities({ stock: stock.stock, temporal, logger, settings: config.reconcile }),
      ...createWebhookActivities({ queue: new DeliveryQueue(stock.db), logger, settings: config.webhooks }),
    },
    ...workerSettings(config),
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
  // The SDK stops the worker gracefully on a shutdown signal. Under `npm start` that is SIGTERM
  // only, sent by the supervisor once the API processes have stopped (src/processes/supervisor.ts); run on
  // its own, the SDK's defaults apply.
  if (supervisedAs()) Runtime.install({ shutdownSignals: takeShutdownSignals() });
  createWorker(config, {}, log)
    .then(async ({ run }) => {
      log.info(
        { taskQueue: config.taskQueue, namespace: config.temporalNamespace, address: config.temporalAddress },
        'worker running',
      );
      reportReady();
      await run;
      log.info('worker stopped');
      // Everything is closed; under `npm start` the channel to the supervisor would keep it alive.
      process.exit(0);
    })
    .catch((err: unknown) => {
      log.error({ err }, 'worker failed');
      process.exit(1);
    });
}
