/**
 * The service under test, as it ships: `node lib/api/server.js` and `node lib/worker.js`, as
 * separate processes with the service's environment variables, pointed at the harness's stores.
 *
 * They run from a copy taken at start (snapshotService): other people rebuild lib/ and edit lua/
 * (`npm test` empties lib/ first) while a run of many minutes restarts these processes again and
 * again, and every restart must find the same code.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT, SHIPPED_BESIDE_LIB } from '../../src/paths';
import { isStopping, onCleanUp, sleep, spawnManaged, type Managed } from './procs';
import { freePort } from '../../test/helpers/redis-server';

const run = promisify(execFile);

export const TASK_QUEUE = 'stockhold-faults';

export interface ServiceConfig {
  redisUrl: string;
  databaseUrl: string;
  temporalAddress: string;
  logDir: string;
  /** Extra environment for both processes (e.g. knobs of the reconciler). */
  env?: NodeJS.ProcessEnv;
}

/**
 * A copy of the service that nobody rebuilds under us: lib/ as `npm run build` left it (or, with
 * `rev`, src/ of that git revision compiled afresh), with lua/, migrations/, public/ (the ops page,
 * /docs; a revision from before it has none) and package.json beside it, so src/paths.ts takes the
 * copy for the project root and reads the scripts, migrations and pages of the same moment.
 * node_modules/ is found above it. Removed at the end.
 */
export function snapshotService(rev?: string): string {
  const dir = path.join(PROJECT_ROOT, 'build', 'faults', `.service-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  onCleanUp(() => rmSync(dir, { recursive: true, force: true }));
  if (rev) {
    // The revision's own sources, compiled with its own build config.
    const archive =
      'git archive "$1" src lua migrations package.json tsconfig.json tsconfig.build.json $(git cat-file -e "$1:public" 2>/dev/null && echo public)';
    execFileSync('sh', ['-c', `${archive} | tar -x -C "$2"`, 'sh', rev, dir], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    execFileSync(
      process.execPath,
      [
        path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        path.join(dir, 'tsconfig.build.json'),
      ],
      { cwd: dir, stdio: 'inherit' },
    );
  } else {
    const lib = path.join(PROJECT_ROOT, 'lib');
    for (const entry of ['worker.js', 'api/server.js', 'cli/migrate.js']) {
      if (!existsSync(path.join(lib, entry)))
        throw new Error(`lib/${entry} not found: run \`npm run build\` first (\`npm run faults\` does)`);
    }
    cpSync(lib, path.join(dir, 'lib'), { recursive: true });
    for (const entry of SHIPPED_BESIDE_LIB)
      cpSync(path.join(PROJECT_ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  return path.join(dir, 'lib');
}

/** A process of the service that exited without being told to: a crash, whatever the harness did to its stores. */
export interface Crash {
  process: 'api' | 'worker';
  pid: number;
  at: number;
  exit: string;
  /** The error it died of, from the end of its log. */
  reason: string;
}

/** One of the service's processes (API or worker), restartable; every incarnation logs to one file. */
class ServiceProcess {
  proc?: Managed;
  /** Set while the harness itself stops or kills it, so that exit is not taken for a crash. */
  expectExit = false;
  /** Called when it exits on its own (a crash). */
  onCrash?: (crash: Crash) => void;
  /** pids of every incarnation, in order (RSS samples are per pid). */
  readonly pids: number[] = [];
  restarts = 0;
  constructor(
    readonly name: 'api' | 'worker',
    private readonly script: string,
    private readonly env: () => NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {}

  /** Spawns it and returns the log offset of this incarnation. */
  spawn(): number {
    const fd = openSync(this.logFile, 'a');
    const offset = statSync(this.logFile).size;
    this.proc = spawnManaged(this.name, process.execPath, [this.script], {
      env: this.env(),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.pids.push(this.proc.pid);
    this.expectExit = false;
    const proc = this.proc;
    proc.child.once('exit', (code, signal) => {
      if (this.expectExit || proc !== this.proc) return;
      const tail = this.logSince(offset).slice(-6_000);
      const reason =
        tail
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => /^(\w*Error|throw|Unhandled|FATAL|panic)/.test(l) || /"level":60/.test(l))
          .slice(-3)
          .join(' | ') || tail.split('\n').slice(-3).join(' | ');
      this.onCrash?.({
        process: this.name,
        pid: proc.pid,
        at: Date.now(),
        exit: signal ?? `code ${code}`,
        reason: reason.slice(0, 600),
      });
    });
    return offset;
  }

  running(): boolean {
    return this.proc?.running() ?? false;
  }

  logSince(offset: number): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(offset);
    } catch {
      return '';
    }
  }

  tail(chars = 3_000): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-chars);
    } catch {
      return '';
    }
  }

  async kill9(): Promise<void> {
    this.expectExit = true;
    this.proc?.signal('SIGKILL');
    await this.proc?.exited;
  }

  async stop(): Promise<void> {
    this.expectExit = true;
    await this.proc?.stop(12_000);
  }
}

export class Service {
  readonly adminToken = `faults-admin-${randomBytes(12).toString('hex')}`;
  readonly clientToken = `faults-client-${randomBytes(12).toString('hex')}`;
  readonly api: ServiceProcess;
  readonly worker: ServiceProcess;
  port = 0;
  /** Every crash of either process; each is restarted a second later, as a supervisor would. */
  readonly crashes: Crash[] = [];
  private stopping = false;

  constructor(
    private readonly lib: string,
    private readonly config: ServiceConfig,
  ) {
    const env = (port: number, logLevel: string) => (): NodeJS.ProcessEnv => ({
      ...process.env,
      NODE_ENV: 'production',
      PORT: String(port),
      DATABASE_URL: config.databaseUrl,
      REDIS_URL: config.redisUrl,
      TEMPORAL_ADDRESS: config.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      INVENTORY_ADMIN_TOKEN: this.adminToken,
      INVENTORY_API_TOKEN: this.clientToken,
      LOG_LEVEL: logLevel,
      ...config.env,
    });
    this.api = new ServiceProcess(
      'api',
      path.join(lib, 'api', 'server.js'),
      () => env(this.port, 'warn')(),
      path.join(config.logDir, 'api.log'),
    );
    this.worker = new ServiceProcess(
      'worker',
      path.join(lib, 'worker.js'),
      env(0, 'info'),
      path.join(config.logDir, 'worker.log'),
    );
    const supervise = (p: ServiceProcess, restart: () => Promise<void>) => {
      p.onCrash = (crash) => {
        if (this.stopping || isStopping()) return; // the harness's own clean-up, not a crash
        this.crashes.push(crash);
        void (async () => {
          for (let attempt = 1; attempt <= 30 && !p.running(); attempt++) {
            await sleep(1_000);
            if (p.running() || this.stopping || isStopping()) return;
            try {
              await restart();
            } catch {
              // the stores may still be down: try again
            }
          }
        })();
      };
    };
    supervise(this.api, () => this.startApi());
    supervise(this.worker, () => this.startWorker());
    onCleanUp(() => this.stop());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `node lib/cli/migrate.js`: creates the database and applies the migrations (the API does not). */
  async migrate(): Promise<void> {
    // src/cli/ was src/scripts/ before the reshaping: a --rev of an older revision has it there.
    const folder = existsSync(path.join(this.lib, 'cli', 'migrate.js')) ? 'cli' : 'scripts';
    await run(process.execPath, [path.join(this.lib, folder, 'migrate.js')], {
      env: {
        ...process.env,
        DATABASE_URL: this.config.databaseUrl,
        INVENTORY_ADMIN_TOKEN: this.adminToken,
        INVENTORY_API_TOKEN: this.clientToken,
      },
      timeout: 60_000,
    });
  }

  async start(): Promise<void> {
    this.port = await freePort();
    await Promise.all([this.startWorker(), this.startApi()]);
  }

  /** Starts (or restarts) the worker and waits until it polls its task queue. */
  async startWorker(timeoutMs = 120_000): Promise<void> {
    const offset = this.worker.spawn();
    const until = Date.now() + timeoutMs;
    while (!/"msg":"worker running"/.test(this.worker.logSince(offset))) {
      if (!this.worker.running())
        throw new Error(`the worker exited at start:\n${this.worker.logSince(offset).slice(-3_000)}`);
      if (Date.now() > until)
        throw new Error(
          `the worker did not start within ${timeoutMs / 1000} s:\n${this.worker.logSince(offset).slice(-3_000)}`,
        );
      await sleep(200);
    }
  }

  /** Starts (or restarts) the API on its port and waits until it listens (not until every store is up). */
  async startApi(timeoutMs = 120_000): Promise<void> {
    const offset = this.api.spawn();
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (!this.api.running()) throw new Error(`the API exited at start:\n${this.api.logSince(offset).slice(-3_000)}`);
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > until)
        throw new Error(
          `the API did not listen within ${timeoutMs / 1000} s:\n${this.api.logSince(offset).slice(-3_000)}`,
        );
      await sleep(200);
    }
  }

  /** True when /readyz answers 200 (every store reachable from the API). */
  async ready(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2_500) });
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([this.api.stop(), this.worker.stop()]);
  }
}

/** Resident set sizes in MB of the given pids (ps), missing ones left out. */
export async function rssOf(pids: number[]): Promise<Map<number, number>> {
  const found = new Map<number, number>();
  if (pids.length === 0) return found;
  try {
    const { stdout } = await run('ps', ['-o', 'pid=,rss=', '-p', pids.join(',')]);
    for (const line of stdout.split('\n')) {
      const m = /^\s*(\d+)\s+(\d+)/.exec(line);
      if (m) found.set(Number(m[1]), Number(m[2]) / 1024);
    }
  } catch {
    // ps exits 1 when none of them runs
  }
  return found;
}
