/**
 * Every process the benchmark starts is registered here, so an exit, an error or a Ctrl-C stops
 * all of them (by their own pid, never by name). Load generators are forked Node children that
 * speak a small IPC protocol (children/protocol.ts).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildMessage } from '../children/protocol';

const live = new Set<ChildProcess>();

export function track<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(force);
}

export async function stopAll(graceMs = 10_000): Promise<void> {
  await Promise.all([...live].map((child) => stopProcess(child, graceMs)));
}

/** Last resort (process exit): SIGKILL whatever is still running. */
export function killAllNow(): void {
  for (const child of live) {
    try {
      if (isRunning(child)) child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

export const CHILDREN_DIR = path.resolve(__dirname, '..', 'children');
const ORPHAN_GUARD = path.resolve(__dirname, 'orphan-guard.js');

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** The last lines of its log, for error messages. */
  tail(lines?: number): string;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns one of the service's own entry points (`node lib/worker.js`, `node lib/api/server.js`)
 * with its output in a log file. A preload (orphan-guard) stops it if this process dies without
 * cleaning up.
 */
export function spawnNode(
  script: string,
  opts: { env: NodeJS.ProcessEnv; logFile: string; nodeArgs?: string[] },
): ServiceProcess {
  const fd = openSync(opts.logFile, 'a');
  const child = track(
    spawn(process.execPath, [...(opts.nodeArgs ?? []), '-r', ORPHAN_GUARD, script], {
      env: opts.env,
      stdio: ['ignore', fd, fd, 'ipc'],
    }),
  );
  closeSync(fd);
  return {
    child,
    pid: child.pid ?? -1,
    logFile: opts.logFile,
    tail: (lines = 30) => tailOf(opts.logFile, lines),
    stop: (graceMs) => stopProcess(child, graceMs),
  };
}

export function tailOf(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Forks a one-shot child (children/<name>.js), sends it `job`, and resolves with its result. */
export function runJob<R>(
  name: string,
  job: unknown,
  opts: { timeoutMs: number; onProgress?: (text: string) => void; execArgv?: string[] },
): Promise<R> {
  const child = track(
    fork(path.join(CHILDREN_DIR, `${name}.js`), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: opts.execArgv ?? [],
    }),
  );
  return new Promise<R>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      settle(() => reject(new Error(`${name}: no result within ${Math.round(opts.timeoutMs / 1000)} s`)));
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('message', (message: ChildMessage<R>) => {
      if (message.type === 'progress') opts.onProgress?.(message.text);
      else if (message.type === 'result') settle(() => resolve(message.result));
      else if (message.type === 'error') settle(() => reject(new Error(`${name}: ${message.message}`)));
    });
    child.once('exit', (code, signal) =>
      settle(() => reject(new Error(`${name} exited (${code ?? signal}) without a result`))),
    );
    child.send(job as object);
  });
}

/** Forks a long-running child (a reference server or worker) and waits until it reports ready. */
export async function startChildService<I>(
  name: string,
  config: unknown,
  timeoutMs = 120_000,
): Promise<{ info: I; pid: number; stop(): Promise<void> }> {
  const child = track(
    fork(path.join(CHILDREN_DIR, `${name}.js`), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] }),
  );
  const info = await new Promise<I>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name}: not ready within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
    child.on('message', (message: ChildMessage<I>) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.info);
      } else if (message.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`${name}: ${message.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready`));
    });
    child.send(config as object);
  }).catch(async (err: unknown) => {
    await stopProcess(child, 2_000);
    throw err;
  });
  return { info, pid: child.pid ?? -1, stop: () => stopProcess(child) };
}
