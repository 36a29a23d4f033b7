/**
 * `npm start`: brings the whole service up on this machine.
 *   1. creates and migrates the PostgreSQL database;
 *   2. starts a local Temporal dev server (Web UI, search attributes, state in .data/) when
 *      nothing answers at TEMPORAL_ADDRESS;
 *   3. starts the worker (a child process) and the API (this process).
 * Ctrl-C stops everything it started.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { onShutdownSignal, startApi } from './api/server';
import { startupBanner } from './banner';
import { loadConfigOrExit } from './config';
import { createLogger } from './logger';
import { migrate } from './stock/database';
import { PROJECT_ROOT, startDevServer, temporalAnswers, type DevServer } from './temporal';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel, 'stockhold');

  await migrate(config.databaseUrl, (msg) => logger.debug(msg));
  logger.info('database migrated');

  let devServer: DevServer | undefined;
  // The Web UI of a server we did not start is wherever TEMPORAL_UI_URL says (else not shown).
  let uiUrl = config.temporalUiUrl;
  if (await temporalAnswers(config.temporalAddress)) {
    logger.info({ address: config.temporalAddress }, 'using the Temporal server already running');
  } else {
    logger.info({ address: config.temporalAddress }, 'no Temporal server answers: starting a local dev server');
    devServer = await startDevServer({
      address: config.temporalAddress,
      namespace: config.temporalNamespace,
      dataDir: path.join(PROJECT_ROOT, '.data'),
      log: (line) => logger.debug({ temporal: line }),
    });
    uiUrl = devServer.uiUrl;
  }

  const worker: ChildProcess = fork(path.join(__dirname, 'worker.js'), [], { stdio: 'inherit' });
  const workerExited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const api = await startApi(config, logger);

  console.log(startupBanner(config, { apiUrl: api.url, uiUrl, devServer: devServer !== undefined }));

  onShutdownSignal(async () => {
    await api.close();
    if (worker.exitCode === null) worker.kill('SIGTERM');
    await workerExited;
    await devServer?.stop();
  }, logger);
  worker.once('exit', (code) => {
    if (code !== 0 && code !== null) logger.error({ code }, 'worker exited');
  });
}

main().catch((err: unknown) => {
  console.error('Stockhold failed to start:', err);
  process.exit(1);
});
