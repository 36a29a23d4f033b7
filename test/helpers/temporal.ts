import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { Connection } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundle } from '@temporalio/worker';
import { TEMPORAL_CLI, TEMPORAL_TEST_SERVER } from '../../src/paths';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/workflows/definitions';
import { killWhenOrphaned } from './guard';
import { freePort } from './redis-server';

/**
 * The SDK's runtime for a test file, quiet about what tests provoke on purpose: the worker's
 * "Activity failed" warnings, core's "Task not found when completing" (a workflow task overtaken
 * by a flood of updates), the time-skipping server's missing heartbeat capability. Errors still
 * show. Once per test file, before its first worker or environment; a second call is a no-op.
 */
export function installTestRuntime(): void {
  try {
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
    });
  } catch {
    // already installed in this test file's module registry
  }
}

/**
 * The time-skipping test server installed by `npm run setup` (never downloaded). The SDK starts it
 * (teardown() kills it); it is guarded here too, so it cannot outlive a test process that dies first.
 */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  installTestRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEMPORAL_TEST_SERVER } },
  });
  const port = env.address.split(':').at(-1);
  for (const pid of childProcesses((args) => args.startsWith(`${TEMPORAL_TEST_SERVER} `) && args.endsWith(` ${port}`)))
    killWhenOrphaned(pid);
  return env;
}

/** This process's children whose command line satisfies `match` (from `ps`: the SDK does not tell its servers' pids). */
function childProcesses(match: (args: string) => boolean): number[] {
  let listing: string;
  try {
    listing = execFileSync('ps', ['-A', '-o', 'pid=,ppid=,args='], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return [];
  }
  return listing.split('\n').flatMap((line) => {
    const found = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    return found && Number(found[2]) === process.pid && match(found[3]!.trim()) ? [Number(found[1])] : [];
  });
}

/**
 * What the dev server logs that a test has no use for: warnings, and its "service failures", the
 * errors it answers a request with, which the client that made it sees anyway (e.g. the
 * ResourceExhausted a flood of updates to one workflow earns). Its other errors are printed.
 */
const EXPECTED_SERVER_OUTPUT = /^\s*$|\bmsg="service failures"/;

/**
 * A real Temporal dev server (the CLI installed by `npm run setup`; in memory, no UI) with the
 * contract's search attributes, started as `TestWorkflowEnvironment.createLocal` does, except that
 * its output goes through EXPECTED_SERVER_OUTPUT and it cannot outlive the test process (a guard
 * kills it if the process dies without `teardown()`). `teardown()` stops it.
 */
export async function devServerEnv(options: { uiPort?: number } = {}): Promise<TestWorkflowEnvironment> {
  installTestRuntime();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServer(await freePort(), options.uiPort);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 5) throw err;
    }
  }
}

class PortTaken extends Error {}

async function startDevServer(port: number, uiPort?: number): Promise<TestWorkflowEnvironment> {
  const address = `127.0.0.1:${port}`;
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    'default',
    // The Web UI only for a test that opens it (the ops page's links).
    ...(uiPort === undefined ? ['--headless'] : ['--ui-port', String(uiPort)]),
    '--log-format',
    'text',
    '--log-level',
    'error',
    '--output',
    'none', // no banner
    // As the SDK's createLocal sets them:
    '--dynamic-config-value',
    'frontend.enableServerVersionCheck=false',
    '--dynamic-config-value',
    'frontend.enableUpdateWorkflowExecution=true',
    '--dynamic-config-value',
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
    ...SEARCH_ATTRIBUTE_KEYS.flatMap((key) => [
      '--search-attribute',
      `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`,
    ]),
  ];
  const child = spawn(TEMPORAL_CLI, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const guard = child.pid === undefined ? undefined : killWhenOrphaned(child.pid);
  void exited.then(() => guard?.cancel());
  let recent = '';
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      recent = (recent + chunk).slice(-20_000);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      const shown = lines.filter((line) => !EXPECTED_SERVER_OUTPUT.test(line));
      if (shown.length > 0) process.stderr.write(shown.map((line) => `[temporal dev server] ${line}\n`).join(''));
    });
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); // in memory: nothing to lose
    await exited;
  };

  try {
    await waitUntilServing(
      address,
      () => spawnError ?? (child.exitCode !== null || child.signalCode !== null ? new Error('exited') : undefined),
    );
  } catch (err) {
    await stop();
    if (/address already in use/i.test(recent)) throw new PortTaken(recent);
    throw new Error(
      `the Temporal dev server did not start (${TEMPORAL_CLI} ${args.join(' ')}): ${String(err)}\n${recent}`,
    );
  }
  let env: TestWorkflowEnvironment;
  try {
    env = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace: 'default' });
  } catch (err) {
    await stop();
    throw err;
  }
  const closeConnections = env.teardown.bind(env);
  env.teardown = async () => {
    try {
      await closeConnections();
    } finally {
      await stop();
    }
  };
  return env;
}

/** Waits until the server answers on `address` with its namespace `default` registered. */
async function waitUntilServing(address: string, failed: () => Error | undefined, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const error = failed();
    if (error) throw error;
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > until) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let bundle: Promise<WorkflowBundle> | undefined;
/** Bundles the workflows once per test file; every worker of the file reuses it. */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: quietLogger });
  return bundle;
}

const noop = () => undefined;
export const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

export const taskQueue = (name = 'test') => `${name}-${randomUUID()}`;

/**
 * An AbortController for a test file's Temporal calls (`client.withAbortSignal(aborter.signal, fn)`),
 * aborted in afterAll. The client adds an 'abort' listener to the signal for every call and never
 * removes it (@temporalio/client, connection.ts), so a long-lived signal must take any number of
 * listeners: without this, the eleventh call prints a MaxListenersExceededWarning.
 */
export function callAborter(): AbortController {
  const aborter = new AbortController();
  setMaxListeners(0, aborter.signal);
  return aborter;
}
