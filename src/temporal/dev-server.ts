/**
 * The Temporal CLI's dev server, which `npm start`, the tests and the benchmarks start when no
 * Temporal is given: the contract's search attributes registered, its state in a SQLite file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { TEMPORAL_CLI } from '../paths';
import { SEARCH_ATTRIBUTES } from './search-attributes';
import { temporalAnswers } from './connection';

/** `--search-attribute Name=Type` flags for `temporal server start-dev`. */
export function searchAttributeFlags(): string[] {
  return SEARCH_ATTRIBUTES.flatMap(({ name, type }) => ['--search-attribute', `${name}=${type}`]);
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
export async function startDevServer(opts: {
  address: string;
  namespace: string;
  dataDir: string;
  uiPort?: number;
  log?: (line: string) => void;
}): Promise<DevServer> {
  if (!existsSync(TEMPORAL_CLI))
    throw new Error(`Temporal CLI not found at ${TEMPORAL_CLI}: run \`npm run setup\` first`);
  const [host, portText] = opts.address.split(':');
  const port = Number(portText ?? 7233);
  const uiPort = opts.uiPort ?? port + 1000;
  mkdirSync(opts.dataDir, { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    host || '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--namespace',
    opts.namespace,
    '--db-filename',
    path.join(opts.dataDir, 'temporal.db'),
    '--log-level',
    'warn',
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
      const reason =
        recent.filter((line) => /error|fail|fatal|unable|can't|cannot/i.test(line)).at(-1) ??
        recent.at(-1) ??
        'no output';
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
