/**
 * `npm start`: brings the whole service up on this machine.
 *   1. creates and migrates the PostgreSQL database (here, once, before any process starts);
 *   2. Temporal: with TLS or an API key (Temporal Cloud, a self-hosted cluster) it checks that the
 *      cluster answers and refuses to start otherwise; without, it uses the server answering at
 *      TEMPORAL_ADDRESS, or starts a local dev server (Web UI, search attributes, state in .data/);
 *   3. starts API_PROCESSES API processes sharing the port and WORKER_PROCESSES workers, restarts
 *      any that crashes (src/processes/supervisor.ts), and prints where everything is once all are ready.
 * Ctrl-C stops everything it started, in order; a second Ctrl-C kills it all at once.
 */
import path from 'node:path';
import { startupBanner } from './banner';
import { loadConfigOrExit, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { EXIT_CONFIG } from './processes/messages';
import { Supervisor } from './processes/supervisor';
import { migrate } from './stock/database';
import { PROJECT_ROOT } from './paths';
import { remoteTemporalReason, temporalAnswers, temporalProblem } from './temporal/connection';
import { startDevServer, type DevServer } from './temporal/dev-server';

/** Exit code when the configured Temporal does not answer (EX_UNAVAILABLE). */
const EXIT_UNAVAILABLE = 69;

/**
 * A second signal this soon after the first is the same Ctrl-C: npm forwards the terminal's
 * SIGINT to its script, which the terminal signalled already, so one keypress can arrive twice.
 */
const SAME_SIGNAL_MS = 1_000;

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel, 'stockhold');
  // What the children learn only once Temporal is settled (read when each one is forked).
  const childEnv: Record<string, string> = {};
  // Built now (it starts nothing yet) so that a signal at any moment of the start finds it.
  const supervisor = new Supervisor({
    env: childEnv,
    scripts: { api: path.join(__dirname, 'api', 'server.js'), worker: path.join(__dirname, 'worker.js') },
    counts: { api: config.apiProcesses, worker: config.workerProcesses },
    logger,
    onFatal: (reason) => {
      logger.error(reason);
      void stopAll(EXIT_CONFIG);
    },
  });
  let devServer: Promise<DevServer | undefined> = Promise.resolve(undefined);

  let stopping: Promise<void> | undefined;
  const stopAll = (code: number) => {
    stopping ??= (async () => {
      await supervisor.stop().catch((err: unknown) => logger.error({ err }, 'stopping the processes failed'));
      await (await devServer.catch(() => undefined))?.stop();
      process.exit(code);
    })();
    return stopping;
  };
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignalAt === 0) {
      firstSignalAt = Date.now();
      logger.info(
        { signal },
        'shutting down: API processes finish their requests, then the workers their tasks (Ctrl-C again to kill at once)',
      );
      void stopAll(0);
    } else if (Date.now() - firstSignalAt > SAME_SIGNAL_MS) {
      logger.warn({ signal }, 'killing every process now');
      supervisor.kill();
      void devServer
        .then(
          (d) => d?.process.kill('SIGKILL'),
          () => undefined,
        )
        .finally(() => process.exit(1));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  await migrate(config.databaseUrl, (msg) => logger.debug(msg));
  logger.info('database migrated');

  devServer = temporalFor(config, logger);
  const dev = await devServer;
  if (stopping) return;
  // The Web UI of a server we did not start is wherever TEMPORAL_UI_URL says (else not shown).
  const uiUrl = dev?.uiUrl ?? config.temporalUiUrl;
  // The ops page links reservations to their workflows in the Web UI of the dev server started here.
  if (uiUrl) childEnv.TEMPORAL_UI_URL = uiUrl;

  let port: number;
  try {
    ({ port } = await supervisor.start());
  } catch (err) {
    if (stopping) return;
    console.error(`Stockhold failed to start: ${err instanceof Error ? err.message : String(err)}`);
    return stopAll(1);
  }
  console.log(
    startupBanner(config, {
      apiUrl: `http://127.0.0.1:${port}`,
      uiUrl,
      devServer: dev !== undefined,
      processes: { api: config.apiProcesses, workers: config.workerProcesses },
    }),
  );
}

/**
 * The Temporal to run against; the local dev server it started, if it did. With TLS or an API
 * key configured a remote cluster was meant, and starting a dev server in its place would run the
 * service against the wrong Temporal, so it only checks that cluster and says what is wrong.
 */
async function temporalFor(config: Config, logger: Logger): Promise<DevServer | undefined> {
  const remote = remoteTemporalReason(config);
  if (remote) {
    const problem = await temporalProblem(config);
    if (problem) {
      console.error(
        [
          `Stockhold cannot start: the Temporal cluster at ${config.temporalAddress} (namespace ${config.temporalNamespace}) does not answer: ${problem}`,
          `  ${remote}, so a remote cluster is meant: npm start starts a local dev server only for a local address without TLS or API key.`,
          '  Check TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the credentials (TEMPORAL_API_KEY, or TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY).',
        ].join('\n'),
      );
      process.exit(EXIT_UNAVAILABLE);
    }
    logger.info(
      {
        address: config.temporalAddress,
        namespace: config.temporalNamespace,
        tls: true,
        apiKey: config.temporalApiKey !== undefined,
      },
      'using the Temporal cluster',
    );
    return undefined;
  }
  if (await temporalAnswers(config.temporalAddress)) {
    logger.info({ address: config.temporalAddress }, 'using the Temporal server already running');
    return undefined;
  }
  logger.info({ address: config.temporalAddress }, 'no Temporal server answers: starting a local dev server');
  return startDevServer({
    address: config.temporalAddress,
    namespace: config.temporalNamespace,
    dataDir: path.join(PROJECT_ROOT, '.data'),
    log: (line) => logger.debug({ temporal: line }),
  });
}

main().catch((err: unknown) => {
  console.error('Stockhold failed to start:', err);
  process.exit(1);
});
