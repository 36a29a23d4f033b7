/** Temporal plumbing shared by the service, the worker, the tests and the scripts. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { TEMPORAL_CLI } from './paths';
import { RECONCILER_WORKFLOW_ID, reconcilerWorkflow } from './workflows/reconciler';
import { SEARCH_ATTRIBUTE_KEYS } from './workflows/definitions';

export { PROJECT_ROOT, TEMPORAL_CLI, TEMPORAL_TEST_SERVER } from './paths';

const SA_TYPE_NAMES: Record<string, string> = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList', DATETIME: 'Datetime' };

/** `--search-attribute Name=Type` flags for `temporal server start-dev`. */
export function searchAttributeFlags(): string[] {
  return SEARCH_ATTRIBUTE_KEYS.flatMap((key) => ['--search-attribute', `${key.name}=${SA_TYPE_NAMES[key.type]}`]);
}

/** True when a Temporal frontend answers at `address` within `timeoutMs`. */
export async function temporalAnswers(address: string, timeoutMs = 1_500): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

/** Connects a client, retrying while the server starts. */
export async function connectClient(address: string, namespace: string, waitMs = 60_000): Promise<Client> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      return new Client({ connection, namespace });
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Registers the contract's search attributes on a server we did not start; existing ones are kept. */
export async function ensureSearchAttributes(client: Client, namespace: string): Promise<void> {
  const types: Record<string, number> = { KEYWORD: 2, KEYWORD_LIST: 7, DATETIME: 6 }; // temporal.api.enums.v1.IndexedValueType
  // The time-skipping test server cannot list search attributes, only add them.
  const existing = await client.connection.operatorService
    .listSearchAttributes({ namespace })
    .then((r) => r.customAttributes ?? {})
    .catch(() => ({}));
  const missing = SEARCH_ATTRIBUTE_KEYS.filter((k) => !(k.name in existing));
  if (missing.length === 0) return;
  await client.connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, types[k.type]!])),
  });
}

/** How long one run of the reconcile activity lasts before the workflow schedules the next. */
const RECONCILE_RUN_MS = 5 * 60_000;

/** Starts the deployment's reconciler workflow unless it runs already (idempotent: any process may call it). */
export async function ensureReconciler(client: Client, taskQueue: string): Promise<void> {
  await client.workflow.start(reconcilerWorkflow, {
    workflowId: RECONCILER_WORKFLOW_ID,
    taskQueue,
    args: [{ runMs: RECONCILE_RUN_MS }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

export interface DevServer {
  process: ChildProcess;
  address: string;
  uiUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts the Temporal CLI's dev server (with the Web UI and the search attributes), keeping its
 * state in a SQLite file, and waits until it answers.
 */
export async function startDevServer(opts: { address: string; namespace: string; dataDir: string; uiPort?: number; log?: (line: string) => void }): Promise<DevServer> {
  if (!existsSync(TEMPORAL_CLI)) throw new Error(`Temporal CLI not found at ${TEMPORAL_CLI}: run \`npm run setup\` first`);
  const [host, portText] = opts.address.split(':');
  const port = Number(portText ?? 7233);
  const uiPort = opts.uiPort ?? port + 1000;
  mkdirSync(opts.dataDir, { recursive: true });
  const args = [
    'server', 'start-dev',
    '--ip', host || '127.0.0.1',
    '--port', String(port),
    '--ui-port', String(uiPort),
    '--namespace', opts.namespace,
    '--db-filename', path.join(opts.dataDir, 'temporal.db'),
    '--log-level', 'warn',
    ...searchAttributeFlags(),
  ];
  const child = spawn(TEMPORAL_CLI, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // The last lines the server printed: its own reason when it cannot start.
  const recent: string[] = [];
  const forward = (chunk: Buffer) => {
    const text = chunk.toString().trimEnd();
    recent.push(...text.split('\n').filter((line) => line.trim() !== ''));
    recent.splice(0, Math.max(0, recent.length - 20));
    opts.log?.(text);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const until = Date.now() + 60_000;
  while (!(await temporalAnswers(opts.address, 1_000))) {
    if (child.exitCode !== null) {
      const reason = recent.filter((line) => /error|fail|fatal|unable|can't|cannot/i.test(line)).at(-1) ?? recent.at(-1) ?? 'no output';
      throw new Error(`temporal server start-dev exited with ${child.exitCode}: ${reason}`);
    }
    if (Date.now() > until) throw new Error('temporal server start-dev did not answer within 60 s');
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    process: child,
    address: opts.address,
    uiUrl: `http://${host || '127.0.0.1'}:${uiPort}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
