/**
 * For tests that run the service's own processes from lib/: building it when stale, asking whether
 * a process lives, and running worker processes (`node lib/worker.js`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { PROJECT_ROOT } from '../../src/paths';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * Compiles src/ into lib/ when `file` (e.g. lib/worker.js) is missing or older than any file of
 * src/ (`npm test` builds first, so this matters when one test file runs alone). tsc still emits
 * JavaScript for files with type errors; a type error elsewhere in src/ (which `npm test`'s
 * typecheck reports anyway) must not stop the test from running what was emitted.
 */
export function buildIfStale(file: string): void {
  if (existsSync(file) && statSync(file).mtimeMs >= newestMtime(path.join(PROJECT_ROOT, 'src'))) return;
  const startedAt = Date.now();
  try {
    execFileSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], {
      cwd: PROJECT_ROOT,
      stdio: 'pipe',
      timeout: 180_000,
    });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    const report = `${String(e.stdout ?? '')}${String(e.stderr ?? '')}`;
    if (!existsSync(file) || statSync(file).mtimeMs < startedAt - 1_000) throw new Error(`build failed:\n${report}`);
    console.warn(
      `build reported type errors; running the emitted ${path.relative(PROJECT_ROOT, file)} anyway:\n${report}`,
    );
  }
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- worker processes

/** The worker's entry point in lib/ (build it first with `buildIfStale(WORKER_JS)`). */
export const WORKER_JS = path.join(PROJECT_ROOT, 'lib', 'worker.js');

/** A `node lib/worker.js` child process. */
export interface WorkerProcess {
  child: ChildProcess;
  /** Its last 20,000 characters of output (stdout and stderr), for a failing test's message. */
  output: () => string;
  /** Settles when the process has exited, however it ended. */
  exited: Promise<void>;
}

const liveWorkers = new Set<ChildProcess>();

/**
 * Starts `node lib/worker.js` with the test's environment plus `env` (TEMPORAL_ADDRESS,
 * TEMPORAL_TASK_QUEUE, REDIS_URL, DATABASE_URL…; LOG_LEVEL is `warn` unless `env` says otherwise).
 * Its output is kept, never printed. `killWorkers()` ends the ones still running.
 */
export function spawnWorker(env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, [WORKER_JS], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TEMPORAL_NAMESPACE: 'default', LOG_LEVEL: 'warn', ...env },
  });
  liveWorkers.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      liveWorkers.delete(child);
      resolve();
    }),
  );
  return { child, output: () => output, exited };
}

/** SIGKILLs every worker process `spawnWorker` started that still runs (for afterAll). */
export function killWorkers(): void {
  for (const child of liveWorkers) child.kill('SIGKILL');
}

/**
 * Waits until the worker process polls both the workflow and the activity task queue of `queue`
 * (every Temporal call under `signal`, when given).
 */
export async function waitUntilPolling(
  worker: WorkerProcess,
  client: Client,
  queue: string,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const { timeoutMs = 30_000, signal } = options;
  const prefix = `${worker.child.pid}@`;
  const types = [
    temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  ];
  const describe = (taskQueueType: temporal.api.enums.v1.TaskQueueType) => () =>
    client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: queue }, taskQueueType });
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
      throw new Error(
        `worker exited (${worker.child.exitCode ?? worker.child.signalCode}) before polling:\n${worker.output()}`,
      );
    }
    const polling = await Promise.all(
      types.map(async (taskQueueType) => {
        const described = signal
          ? await client.withAbortSignal(signal, describe(taskQueueType))
          : await describe(taskQueueType)();
        return (described.pollers ?? []).some((p) => p.identity?.startsWith(prefix));
      }),
    );
    if (polling.every(Boolean)) return;
    if (Date.now() > until) throw new Error(`worker did not poll ${queue} within ${timeoutMs} ms:\n${worker.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
