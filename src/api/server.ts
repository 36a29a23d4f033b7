/**
 * The API process: `node lib/api/server.js` (`npm start` runs API_PROCESSES of them sharing the
 * port, src/processes/supervisor.ts). Each also makes sure the deployment's one reconciler workflow runs.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Client } from '@temporalio/client';
import { loadConfigOrExit, type Config } from '../config';
import { createLogger, type Logger } from '../logger';
import { supervisedAs, takeShutdownSignals } from '../processes/child';
import { createStock, type StockClients } from '../stock';
import { WebhookStore } from '../webhooks/store';
import { connectClient } from '../temporal/connection';
import { ensureReconciler, ensureWebhookDispatcher } from '../temporal/deployment';
import { ensureSearchAttributes } from '../temporal/search-attributes';
import { createApp } from './app';
import { deploymentSources } from './metrics/deployment';
import { createMetrics } from './metrics/registry';
import { readinessChecks } from './readiness';
import { ReservationService } from './reservations/service';

export interface RunningApi {
  server: Server;
  url: string;
  stock: StockClients;
  temporal: Client;
  /** Stops accepting connections, lets in-flight requests finish (up to `graceMs`), closes clients. */
  close(graceMs?: number): Promise<void>;
}

export async function startApi(
  config: Config,
  logger: Logger = createLogger(config.logLevel, 'stockhold-api'),
): Promise<RunningApi> {
  const stock = createStock(config, {
    warn: (message, fields) => logger.warn(fields, message),
    alert: (message, fields) => logger.error(fields, message),
  });
  const temporal = await connectClient(config);
  await ensureSearchAttributes(temporal, config.temporalNamespace).catch((err: unknown) =>
    logger.warn({ err }, 'could not register search attributes (the server may not allow it)'),
  );
  // One reconciler per deployment, as a Temporal workflow with a fixed id: every API process
  // makes sure it runs (at start, then every minute), none runs one of its own.
  // The same for the webhook dispatcher.
  const ensure = () =>
    Promise.all([
      ensureReconciler(temporal, config.taskQueue).catch((err: unknown) =>
        logger.warn({ err: String(err) }, 'could not start the reconciler workflow; trying again'),
      ),
      ensureWebhookDispatcher(temporal, config.taskQueue).catch((err: unknown) =>
        logger.warn({ err: String(err) }, 'could not start the webhook dispatcher workflow; trying again'),
      ),
    ]);
  await ensure();
  const reconcilerWatch = setInterval(() => void ensure(), 60_000);
  reconcilerWatch.unref();

  const webhooks = new WebhookStore(stock.db);
  const app = createApp({
    config,
    stock: stock.stock,
    reservations: new ReservationService(temporal, stock.stock, config),
    webhooks,
    metrics: createMetrics(deploymentSources(stock.stock, webhooks)),
    logger,
    checks: readinessChecks(stock, temporal, config.temporalNamespace, config.taskQueue),
  });
  const server = await new Promise<Server>((resolve, reject) => {
    // A backlog above Node's default 511, so a storm of new connections is queued, not reset.
    const s = app.listen(config.port, '0.0.0.0', 4096, () => resolve(s)).on('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  // Under `npm start`, which of its API processes answered (`api-2`): for an operator chasing one
  // misbehaving process behind the shared port, and for the test that checks the port is shared.
  const label = supervisedAs();
  if (label)
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) =>
      res.setHeader('X-Stockhold-Process', label),
    );
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;

  return {
    server,
    url: `http://127.0.0.1:${port}`,
    stock,
    temporal,
    async close(graceMs = 10_000) {
      clearInterval(reconcilerWatch);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(force);
      await stock.close();
      await temporal.connection.close();
    },
  };
}

/** Runs `stop` on the first of `signals` (SIGINT, SIGTERM); a second signal exits at once. */
export function onShutdownSignal(
  stop: () => Promise<void>,
  logger: Logger,
  signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, handler);
}

if (require.main === module) {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel, 'stockhold-api');
  // Under `npm start`, SIGTERM only: the supervisor stops the processes in order (src/processes/supervisor.ts).
  const signals = takeShutdownSignals();
  startApi(config, logger)
    .then((api) => {
      logger.info({ url: api.url }, 'API listening');
      onShutdownSignal(() => api.close(), logger, signals);
    })
    .catch((err: unknown) => {
      logger.error({ err }, 'API failed to start');
      process.exit(1);
    });
}
