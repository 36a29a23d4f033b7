/**
 * A private PostgreSQL cluster (the system's PostgreSQL 15: initdb + pg_ctl, run as the `postgres`
 * user), on 127.0.0.1 and a spare port, in a scratch folder of its own: a database server the
 * fault harness may crash (`pg_ctl -m immediate stop`) and start again without touching the shared
 * one on 5432.
 *
 * It cannot outlive the process that started it: `stop()` ends it and removes its folder, and a
 * guard process (of its own session, like ./guard.ts's) SIGKILLs the postmaster and removes the
 * folder when that process dies without stopping it (Ctrl-C, SIGKILL, a crash).
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Guard } from './guard';
import { freePort } from './redis-server';

const run = promisify(execFile);

/** Debian's PostgreSQL 15 server binaries ($PG_BIN overrides). */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresClusterOptions {
  /** A fixed port; a free one otherwise. */
  port?: number;
  /** Where the scratch folder goes (default: /dev/shm when writable, else the OS temp folder). */
  baseDir?: string;
  /** More server settings, e.g. `{ max_connections: '200' }`. */
  settings?: Record<string, string>;
}

export interface PostgresCluster {
  port: number;
  dir: string;
  /** `postgres://postgres@127.0.0.1:<port>/<database>` (trust authentication). */
  url(database: string): string;
  /** The postmaster's pid while it runs (from postmaster.pid), else undefined. */
  pid(): number | undefined;
  /** Starts the server again (after `crash()` or `stopClean()`), waiting until it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl -m immediate stop`: no clean shutdown, crash recovery on the next start. */
  crash(): Promise<void>;
  /** Sends a signal to the postmaster (e.g. SIGSTOP / SIGCONT). */
  signal(signal: NodeJS.Signals): void;
  /** Stops the server and removes its folder; safe to call twice. */
  stop(): Promise<void>;
  /** The server's log (last 20 kB). */
  log(): string;
}

/** Runs a PostgreSQL binary as the `postgres` user (initdb refuses root); as is when not root. */
async function asPostgres(binary: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const exe = path.join(PG_BIN, binary);
  const [cmd, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  const { stdout, stderr } = await run(cmd, argv, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 });
  return `${stdout}${stderr}`;
}

function scratchBase(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

// $1 the owner, $2 the folder (holding postmaster.pid). When the owner dies: SIGCONT + SIGKILL the
// postmaster (its backends exit when it is gone), wait a moment, remove the folder.
const CLEAN_WHEN_ORPHANED = `
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed -n 's/^.*) \\(.\\).*$/\\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
while alive "$1"; do
  [ -d "$2" ] || exit 0
  sleep 1
done
pid=$(head -n 1 "$2/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then kill -CONT "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null; fi
sleep 2
rm -rf "$2"
exit 0
`;

function cleanWhenOrphaned(dir: string): Guard {
  const guard = spawn('/bin/sh', ['-c', CLEAN_WHEN_ORPHANED, 'stockhold-pg-guard', String(process.pid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  guard.on('error', () => undefined);
  guard.unref();
  return {
    cancel() {
      if (guard.pid !== undefined && guard.exitCode === null && guard.signalCode === null) {
        try {
          process.kill(guard.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    },
  };
}

/** Creates (initdb) and starts a private cluster; the caller must `stop()` it. */
export async function startPostgresCluster(options: PostgresClusterOptions = {}): Promise<PostgresCluster> {
  const dir = mkdtempSync(path.join(options.baseDir ?? scratchBase(), 'stockhold-pg-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const guard = cleanWhenOrphaned(dir);
  const pgUser = (await run('id', ['-u', 'postgres']).catch(() => undefined))?.stdout.trim();
  const pgGroup = (await run('id', ['-g', 'postgres']).catch(() => undefined))?.stdout.trim();
  if (process.getuid?.() === 0 && pgUser && pgGroup) chownSync(dir, Number(pgUser), Number(pgGroup));
  let port = options.port ?? 0;
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: 'off', // a scratch cluster: a process crash keeps the page cache; only an OS crash would need fsync
    max_connections: '200',
    shared_buffers: '64MB',
    // Segments as files in the data folder (removed with it), not in /dev/shm, where an immediate
    // stop would leave them behind.
    dynamic_shared_memory_type: 'mmap',
    ...options.settings,
  };
  const serverOptions = () => [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');

  const pid = (): number | undefined => {
    try {
      const first = readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0];
      const n = Number(first);
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8').slice(-20_000);
    } catch {
      return '';
    }
  };
  const start = async () => {
    try {
      await asPostgres('pg_ctl', ['-D', data, '-o', serverOptions(), '-l', logFile, '-w', '-t', '60', 'start']);
    } catch (err) {
      throw new Error(`pg_ctl start on port ${port} failed: ${String(err)}\n${log()}`);
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        const p = pid();
        if (p !== undefined) {
          try {
            process.kill(p, 'SIGCONT');
          } catch {
            // not running
          }
        }
        if (existsSync(path.join(data, 'postmaster.pid'))) {
          await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '20', 'stop']).catch(() => {
            const left = pid();
            if (left !== undefined) process.kill(left, 'SIGKILL');
          });
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
        guard.cancel();
      }
    })();
    return stopping;
  };

  try {
    await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    for (let attempt = 1; ; attempt++) {
      if (options.port === undefined) port = await freePort();
      try {
        await start();
        break;
      } catch (err) {
        if (options.port !== undefined || attempt >= 5 || !/could not bind|already in use/i.test(String(err)))
          throw err;
      }
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    port,
    dir,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    pid,
    start,
    async crash() {
      const p = pid();
      if (p !== undefined) process.kill(p, 'SIGCONT');
      await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '20', 'stop']);
    },
    signal(signal) {
      const p = pid();
      if (p !== undefined) process.kill(p, signal);
    },
    stop,
    log,
  };
}
