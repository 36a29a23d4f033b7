/**
 * The API process: `node lib/api/server.js` (the service's main command runs it in-process).
 * Also runs the reconciler that rebuilds Redis's counters from PostgreSQL when Redis lost them.
 */
import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import { loadConfigOrExit, type Config } from '../config';
import { createLogger, type Logger } from '../logger';
import { createStock, type StockClients } from '../stock';
import { connectClient, ensureSearchAttributes } from '../temporal';
import { createApp } from './app';
import { createMetrics } from './metrics';
import { ReservationService } from './reservations';

export interface RunningApi {
  server: Server;
  url: string;
  stock: StockClients;
  temporal: Client;
  /** Stops accepting connections, lets in-flight requests finish (up to `graceMs`), closes clients. */
  close(graceMs?: number): Promise<void>;
}

export async function startApi(config: Config, logger: Logger = createLogger(config.logLevel, 'stockhold-api')): Promise<RunningApi> {
  const stock = createStock(config);
  const temporal = await connectClient(config.temporalAddress, config.temporalNamespace);
  await ensureSearchAttributes(temporal, config.temporalNamespace).catch((err: unknown) =>
    logger.warn({ err }, 'could not register search attributes (the server may not allow it)'),
  );
  await stock.stock.ensureLoaded();

  // Redis keeps nothing on disk: when its counters vanish, rebuild them from PostgreSQL.
  let reconciling = false;
  const reconciler = setInterval(() => {
    if (reconciling) return;
    reconciling = true;
    stock.stock
      .ensureLoaded()
      .then((rebuilt) => rebuilt && logger.warn('Redis had lost its stock counters: rebuilt them from PostgreSQL'))
      .catch((err: unknown) => logger.debug({ err }, 'reconciler: stores not reachable'))
      .finally(() => (reconciling = false));
  }, 1_000);
  reconciler.unref();

  const app = createApp({
    config,
    stock: stock.stock,
    reservations: new ReservationService(temporal, stock.stock, config),
    metrics: createMetrics(),
    logger,
    checks: {
      redis: () => stock.redis.ping(),
      postgres: () => stock.db.query('SELECT 1'),
      temporal: () => temporal.workflowService.getSystemInfo({}),
    },
  });
  const server = await new Promise<Server>((resolve, reject) => {
    // A backlog above Node's default 511, so a storm of new connections is queued, not reset.
    const s = app.listen(config.port, '0.0.0.0', 4096, () => resolve(s)).on('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;

  return {
    server,
    url: `http://127.0.0.1:${port}`,
    stock,
    temporal,
    async close(graceMs = 10_000) {
      clearInterval(reconciler);
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

/** Stops `stop` on the first SIGINT/SIGTERM; a second signal exits at once. */
export function onShutdownSignal(stop: () => Promise<void>, logger: Logger): void {
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
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

if (require.main === module) {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel, 'stockhold-api');
  startApi(config, logger)
    .then((api) => {
      logger.info({ url: api.url }, 'API listening');
      onShutdownSignal(() => api.close(), logger);
    })
    .catch((err: unknown) => {
      logger.error({ err }, 'API failed to start');
      process.exit(1);
    });
}
