/** Temporal plumbing shared by the service, the worker, the tests and the scripts. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { TemporalConfig } from './config';
import { TEMPORAL_CLI } from './paths';
import { RECONCILER_WORKFLOW_ID, reconcilerWorkflow } from './workflows/reconciler';
import { WEBHOOK_DISPATCHER_WORKFLOW_ID, webhookDispatcherWorkflow } from './workflows/webhook-dispatcher';
import { SEARCH_ATTRIBUTE_KEYS } from './workflows/definitions';

export { PROJECT_ROOT, TEMPORAL_CLI, TEMPORAL_TEST_SERVER } from './paths';

const SA_TYPE_NAMES: Record<string, string> = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList', DATETIME: 'Datetime' };

/** The contract's search attributes with their type as the Temporal CLI and tcld name it (Keyword, KeywordList, Datetime). */
export const SEARCH_ATTRIBUTES: { name: string; type: string }[] = SEARCH_ATTRIBUTE_KEYS.map((key) => ({ name: key.name, type: SA_TYPE_NAMES[key.type]! }));

/** `--search-attribute Name=Type` flags for `temporal server start-dev`. */
export function searchAttributeFlags(): string[] {
  return SEARCH_ATTRIBUTES.flatMap(({ name, type }) => ['--search-attribute', `${name}=${type}`]);
}

/**
 * What a connection to Temporal needs beyond the address: TLS and the API key. One function for
 * both kinds of connection, the client's `Connection` (API, reconciler, payment example) and the
 * worker's `NativeConnection`, so the two can never be configured differently: the object fits
 * both option types (an API key as a string, TLS as the SDK's TLSConfig).
 */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

export function temporalConnectionOptions(config: Pick<TemporalConfig, 'temporalAddress' | 'temporalTls' | 'temporalApiKey'>): TemporalConnectionOptions {
  const options: TemporalConnectionOptions = { address: config.temporalAddress };
  const tls = config.temporalTls;
  if (tls) {
    options.tls = {
      ...(tls.clientCert ? { clientCertPair: { crt: tls.clientCert.crt, key: tls.clientCert.key } } : {}),
      ...(tls.serverCa ? { serverRootCACertificate: tls.serverCa.pem } : {}),
      ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
    };
  }
  if (config.temporalApiKey) options.apiKey = config.temporalApiKey;
  return options;
}

/**
 * Why `npm start` must not start a local dev server at the configured address, or undefined when
 * it may: an API key or TLS means a real cluster was meant (a dev server would check neither, and
 * the service would quietly run against the wrong Temporal), and a dev server can only listen on
 * this machine.
 */
export function remoteTemporalReason(config: Pick<TemporalConfig, 'temporalAddress' | 'temporalTls' | 'temporalApiKey'>): string | undefined {
  if (config.temporalApiKey) return 'TEMPORAL_API_KEY is set';
  if (config.temporalTls) return 'TLS is configured (TEMPORAL_TLS, TEMPORAL_TLS_CERT, TEMPORAL_TLS_CA or TEMPORAL_TLS_SERVER_NAME)';
  const host = hostOf(config.temporalAddress);
  if (!isThisMachine(host)) return `TEMPORAL_ADDRESS names another machine (${host})`;
  return undefined;
}

/** The host of `host:port` (an IPv6 host in brackets loses them). */
function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) return bracketed[1]!;
  const colon = address.lastIndexOf(':');
  return colon > 0 && address.indexOf(':') === colon ? address.slice(0, colon) : address;
}

function isThisMachine(host: string): boolean {
  const name = host.toLowerCase();
  if (name === 'localhost' || name === '0.0.0.0' || name === '::' || name === '::1' || /^127\./.test(name)) return true;
  return Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.address.toLowerCase() === name));
}

/** True when a Temporal frontend answers at `address` (plaintext: a local dev server) within `timeoutMs`. */
export async function temporalAnswers(address: string, timeoutMs = 1_500): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Connects to the configured Temporal (TLS, API key) and asks for the namespace: undefined when
 * that works, else the reason, for a message that says what to check. The namespace is asked for
 * because a wrong key or certificate often gets through the handshake and fails only there.
 */
export async function temporalProblem(config: TemporalConfig, timeoutMs = 5_000): Promise<string | undefined> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: timeoutMs });
    await connection.withDeadline(Date.now() + timeoutMs, () => connection!.workflowService.describeNamespace({ namespace: config.temporalNamespace }));
    return undefined;
  } catch (err) {
    return err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/** Connects a client to the configured Temporal (TLS, API key), retrying while the server starts. */
export async function connectClient(config: Pick<TemporalConfig, 'temporalAddress' | 'temporalNamespace' | 'temporalTls' | 'temporalApiKey'>, waitMs = 60_000): Promise<Client> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      const connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 2_000 });
      return new Client({ connection, namespace: config.temporalNamespace });
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

/** How long one run of the dispatchWebhooks activity lasts before the workflow schedules the next. */
const WEBHOOK_RUN_MS = 5 * 60_000;

/** Starts the deployment's webhook dispatcher workflow unless it runs already (idempotent: any process may call it). */
export async function ensureWebhookDispatcher(client: Client, taskQueue: string, runMs = WEBHOOK_RUN_MS): Promise<void> {
  await client.workflow.start(webhookDispatcherWorkflow, {
    workflowId: WEBHOOK_DISPATCHER_WORKFLOW_ID,
    taskQueue,
    args: [{ runMs }],
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
  // Detached (a process group of its own): the Ctrl-C the terminal sends to `npm start`'s group
  // must not stop Temporal while the service's processes still finish their work against it;
  // the caller stops it last (stop()).
  const child = spawn(TEMPORAL_CLI, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
    if (child.exitCode !== null || child.signalCode !== null) {
      const reason = recent.filter((line) => /error|fail|fatal|unable|can't|cannot/i.test(line)).at(-1) ?? recent.at(-1) ?? 'no output';
      throw new Error(`temporal server start-dev exited with ${child.exitCode ?? child.signalCode}: ${reason}`);
    }
    if (Date.now() > until) {
      child.kill('SIGKILL'); // detached: nobody else would stop it
      throw new Error('temporal server start-dev did not answer within 60 s');
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    process: child,
    address: opts.address,
    uiUrl: `http://${host || '127.0.0.1'}:${uiPort}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
