/**
 * Every process the fault harness starts, in one registry, so that a normal end, a failure, an
 * uncaught error or a Ctrl-C stops all of them by their own pid or process group, never by name.
 *
 * Each child gets a process group of its own (`detached`): the harness decides when it dies (a
 * Ctrl-C in the terminal reaches only the harness, which then stops things in order), and a kill
 * of the group also takes any child the process made. A guard (test/helpers/guard.ts) SIGKILLs it
 * when the harness itself dies without cleaning up (SIGKILL, OOM).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { killWhenOrphaned, type Guard } from '../../test/helpers/guard';

export interface Managed {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Settles when the process has exited (however). */
  exited: Promise<void>;
  running(): boolean;
  /** Sends a signal to its whole process group. */
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM (SIGCONT first), then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Managed>();
const cleanups = new Set<() => Promise<void> | void>();
let stopping = false;

/** True once `stopEverything` has begun: nothing new may be started (a fault's restart included). */
export function isStopping(): boolean {
  return stopping;
}

/** Throws when the harness is stopping, so a fault in progress does not start a process after the clean-up. */
export function assertNotStopping(what: string): void {
  if (stopping) throw new Error(`not starting ${what}: the harness is stopping`);
}

/** Spawns `command` in a process group of its own, registered and guarded. */
export function spawnManaged(name: string, command: string, args: string[], options: SpawnOptions = {}): Managed {
  assertNotStopping(name);
  const child = spawn(command, args, { ...options, detached: true });
  child.on('error', () => undefined); // reported through `exited`/`running()`; never crash the harness
  const guard: Guard | undefined = child.pid === undefined ? undefined : killWhenOrphaned(child.pid);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const running = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
  const signal = (sig: NodeJS.Signals) => {
    if (!running()) return;
    try {
      process.kill(-child.pid!, sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        // gone
      }
    }
  };
  const managed: Managed = {
    name,
    child,
    pid: child.pid ?? -1,
    exited,
    running,
    signal,
    async stop(graceMs = 10_000) {
      if (running()) {
        signal('SIGCONT');
        signal('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
        clearTimeout(timer);
        if (running()) signal('SIGKILL');
      }
      await exited;
    },
  };
  live.add(managed);
  void exited.then(() => {
    live.delete(managed);
    guard?.cancel();
  });
  return managed;
}

/** Registers an async clean-up (a store's stop, a folder's removal) run by `stopEverything`. */
export function onCleanUp(fn: () => Promise<void> | void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** Stops every registered process and runs every clean-up; safe to call twice. */
export async function stopEverything(): Promise<void> {
  stopping = true;
  await Promise.allSettled([...live].map((m) => m.stop(5_000)));
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    await Promise.resolve()
      .then(fn)
      .catch(() => undefined);
  }
}

/** Last resort at process exit (synchronous): SIGKILL every process group still running. */
export function killEverythingNow(): void {
  for (const m of live) {
    m.signal('SIGCONT');
    m.signal('SIGKILL');
  }
}

/**
 * For a command-line run: Ctrl-C / SIGTERM stop everything and exit 130; an uncaught error does
 * the same with exit 1; the `exit` event SIGKILLs whatever is left.
 */
export function installExitHandlers(log: (msg: string) => void): void {
  let bailing = false;
  const bail = (why: string, code: number) => {
    if (bailing) {
      killEverythingNow();
      process.exit(code);
    }
    bailing = true;
    log(`${why}: stopping everything the harness started…`);
    void stopEverything().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => bail('interrupted', 130));
  process.on('SIGTERM', () => bail('terminated', 143));
  process.on('uncaughtException', (err) => {
    log(`uncaught error: ${err.stack ?? String(err)}`);
    bail('uncaught error', 1);
  });
  process.on('unhandledRejection', (err) => {
    log(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    bail('unhandled rejection', 1);
  });
  process.on('exit', killEverythingNow);
}

/** Sleeps `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
