/**
 * A private `redis-server` for tests: on 127.0.0.1, a spare port, no persistence, a scratch
 * directory of its own; its output is kept (for the error when it does not start), never printed.
 *
 * It cannot outlive the process that started it: `stop()` ends it, and a guard (./guard.ts)
 * SIGKILLs it when that process dies without stopping it (Ctrl-C, SIGKILL, a crash).
 *
 * Fault injection: `kill('SIGSTOP')` freezes the node (clients time out, connections stay open),
 * `kill('SIGCONT')` resumes it, `kill('SIGKILL')` crashes it; `exited` settles when it is gone.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { killWhenOrphaned } from './guard';

export interface RedisServerOptions {
  /** A fixed port (e.g. to restart a killed node where its clients expect it); a free one otherwise. */
  port?: number;
  /** More `redis-server` arguments, e.g. `['--maxmemory', '10mb']` or `['--replicaof', '127.0.0.1', '6390']`. */
  args?: string[];
  /** The `redis-server` binary: $REDIS_SERVER, or `redis-server` on the PATH. */
  executable?: string;
  /** How long to wait for "Ready to accept connections" (default 10 s). */
  startTimeoutMs?: number;
}

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` (logical database 0). */
  url: string;
  port: number;
  pid: number;
  /** Settles (never rejects) when the process has exited, however it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops the node (resuming it first if frozen) and removes its directory; safe to call twice. */
  stop(): Promise<void>;
  /** Sends a signal: SIGSTOP (freeze), SIGCONT (resume), SIGKILL (crash)... A no-op once exited. */
  kill(signal?: NodeJS.Signals): void;
  /** The node's last output (its log), for a failing test's message. */
  output(): string;
}

const HOST = '127.0.0.1';

/** A port free on 127.0.0.1 right now (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

class StartError extends Error {
  constructor(
    message: string,
    readonly portTaken: boolean,
  ) {
    super(message);
  }
}

async function startOnce(port: number, options: RedisServerOptions): Promise<RedisServer> {
  const executable = options.executable ?? process.env.REDIS_SERVER ?? 'redis-server';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stockhold-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--dir',
    dir, // a replica's or a SAVE's RDB file goes here, not into the project
    '--logfile',
    '',
    ...(options.args ?? []),
  ];
  const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close', not 'exit': by then its output has been read to the end (the reason it did not start).
    child.once('close', (code, signal) => resolve({ code, signal }));
    // A spawn failure (no binary) emits 'error' and may never emit 'exit'.
    child.once('error', (err) => {
      keep(Buffer.from(`\n${String(err)}\n`));
      resolve({ code: null, signal: null });
    });
  });
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  void exited.then(removeDir);
  const guard = child.pid === undefined ? undefined : killWhenOrphaned(child.pid);
  void exited.then(() => guard?.cancel());

  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!gone()) child.kill(signal);
  };
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (!gone()) {
        // SIGTERM makes Redis shut down (nothing to save); SIGCONT lets a frozen node act on it.
        kill('SIGTERM');
        kill('SIGCONT');
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => {
          timer = setTimeout(() => resolve('late'), 3_000);
        });
        if ((await Promise.race([exited, late])) === 'late') kill('SIGKILL');
        clearTimeout(timer);
      }
      await exited;
    })();
    return stopping;
  };

  // Ready once it says so; failed if it exits first or is silent for too long.
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const check = () => {
      if (log.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(true);
      }
    };
    child.stdout.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      resolve(log.includes('Ready to accept connections'));
    });
  });
  if (!ready || gone()) {
    await stop();
    const portTaken = /Address already in use/i.test(log);
    throw new StartError(
      `redis-server on port ${port} did not start (${executable} ${args.join(' ')}):\n${log}`,
      portTaken,
    );
  }
  return {
    url: `redis://${HOST}:${port}`,
    port,
    pid: child.pid!,
    exited,
    stop,
    kill,
    output: () => log,
  };
}

/** Starts a private Redis node; with no `port`, on a free one (retrying when another process takes it first). */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  if (options.port !== undefined) return startOnce(options.port, options);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(await freePort(), options);
    } catch (err) {
      if (!(err instanceof StartError && err.portTaken) || attempt >= 5) throw err;
    }
  }
}
