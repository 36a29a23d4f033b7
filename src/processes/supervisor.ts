/**
 * The processes of `npm start`: API_PROCESSES API processes sharing the port and WORKER_PROCESSES
 * workers, all children of the main process, started, watched and stopped by a Supervisor.
 *
 * The children are forked with Node's cluster module. For the API that is what shares the port:
 * the main process opens the listening socket once and hands that socket to every API process,
 * and each accepts connections from it itself (cluster.SCHED_NONE). Not Node's default on Linux,
 * where the main process accepts each connection and passes it on in turn (round-robin): there a
 * connection being passed to a process at the very moment it dies is neither served nor closed
 * (Node's cluster never gives it to another), so its client hangs until its own timeout; with
 * `npm start`'s 20-second holds, a shopper's commit caught that way was seen to outlive its hold
 * (test/integration/processes.test.ts). With one shared socket a connection nobody has accepted
 * yet waits in the kernel's queue for whichever process accepts next, and one a dying process
 * had accepted is reset at once, so its client retries at once. The kernel spreads connections
 * less evenly than round-robin (the test checks each process takes a real share of a storm).
 * The workers are cluster children too, although they listen on nothing, for one property of
 * cluster children: when the main process dies without stopping them (SIGKILL, OOM), they exit as
 * soon as their channel to it closes, instead of polling on as orphans nobody supervises.
 *
 * Metrics are the machine's: GET /metrics through the shared port reaches one API process, which
 * asks the supervisor, which asks every API process for its registry and answers with them
 * combined (prom-client's AggregatorRegistry.aggregate: a process's own counters add up, figures
 * read from PostgreSQL are taken once). So a scrape sees the same counters whichever process took
 * it, and they never jump back. Several machines (or one API process per container, as
 * docker-compose.yml runs them) are scraped one by one and summed by Prometheus.
 *
 * Nothing in a child is once-per-deployment work: the API is stateless (each process makes sure
 * the one reconciler workflow runs, an idempotent start with a fixed workflow id, and registers
 * the search attributes, which is idempotent too), a worker only polls, the database is migrated
 * once by the main process before any child starts, and the rebuild of Redis is fenced.
 */
import cluster, { type Worker as ClusterChild } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../logger';
import {
  EXIT_CONFIG,
  METRICS,
  METRICS_WAIT_MS,
  PROCESS_ENV,
  READY_MESSAGE,
  type MetricsJson,
  type MetricsMessage,
  type ProcessRole,
} from './messages';

export interface Backoff {
  /** Delay before the first restart after a crash. */
  firstMs: number;
  /** Longest delay (the delay doubles with each crash in a row). */
  maxMs: number;
  /** A process that ran this long before crashing starts again from `firstMs`. */
  stableMs: number;
}

/**
 * Restart delays: short, so one crash costs about a second of that process's capacity, and
 * growing, so a process that cannot start (a store down, a bad deploy) does not spin the CPU and
 * flood the log while the others keep serving.
 */
export const DEFAULT_BACKOFF: Backoff = { firstMs: 500, maxMs: 30_000, stableMs: 30_000 };

/** The delay before restarting after `crashes` crashes in a row (1 for the first). */
export function restartDelay(crashes: number, backoff: Backoff = DEFAULT_BACKOFF): number {
  return Math.min(backoff.maxMs, backoff.firstMs * 2 ** Math.max(0, crashes - 1));
}

export interface SupervisorOptions {
  /** The script each role runs (lib/api/server.js, lib/worker.js). */
  scripts: Record<ProcessRole, string>;
  counts: Record<ProcessRole, number>;
  logger: Logger;
  backoff?: Backoff;
  /** Variables added to the children's environment (they inherit this process's, too). */
  env?: Record<string, string>;
  /**
   * Called when a process exits with EXIT_CONFIG after the start: its configuration cannot work,
   * and restarting it would only repeat that. The caller stops everything.
   */
  onFatal?: (reason: string) => void;
}

interface Slot {
  role: ProcessRole;
  label: string;
  child?: ClusterChild;
  /** Ready at least once since the supervisor started (the start is over for it). */
  started: boolean;
  crashesInARow: number;
  startedAt: number;
  restartTimer?: NodeJS.Timeout;
}

/** What became of a child: `code 1`, `signal SIGKILL`. */
function exitOf(code: number | null, signal: string | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}

export class Supervisor {
  private readonly slots: Slot[];
  private readonly backoff: Backoff;
  private stopping = false;
  private port?: number;
  private startWaiter?: { resolve: () => void; reject: (err: Error) => void };
  private metricsRound = 0;
  private readonly metricsParts = new Map<number, (metrics: MetricsJson) => void>();

  constructor(private readonly options: SupervisorOptions) {
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.slots = (['api', 'worker'] as const).flatMap((role) =>
      Array.from({ length: options.counts[role] }, (_, i): Slot => ({
        role,
        label: `${role}-${i + 1}`,
        started: false,
        crashesInARow: 0,
        startedAt: 0,
      })),
    );
  }

  /**
   * Starts every process and resolves, with the API's port, once all are ready: every API process
   * listens and every worker polls. A process that exits before it was ready once fails the start
   * (its own log says why); after the start, a crash is restarted instead.
   */
  async start(): Promise<{ port: number }> {
    const allReady = new Promise<void>((resolve, reject) => (this.startWaiter = { resolve, reject }));
    for (const slot of this.slots) this.fork(slot);
    await allReady;
    return { port: this.port! };
  }

  /** The running children: label and pid. */
  processes(): { label: string; role: ProcessRole; pid: number }[] {
    return this.slots.flatMap((s) =>
      s.child?.process.pid !== undefined && this.alive(s.child)
        ? [{ label: s.label, role: s.role, pid: s.child.process.pid }]
        : [],
    );
  }

  /**
   * Stops every process with SIGTERM: the API processes first (they stop accepting and finish
   * the requests in flight, which may wait on a worker), then the workers (they finish their
   * activities). A process still running `graceMs` after its SIGTERM is killed.
   */
  async stop(graceMs = { api: 15_000, worker: 20_000 }): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) clearTimeout(slot.restartTimer);
    this.startWaiter?.reject(new Error('stopped before every process was ready'));
    this.startWaiter = undefined;
    for (const role of ['api', 'worker'] as const) {
      await Promise.all(this.slots.filter((s) => s.role === role).map((s) => this.terminate(s, graceMs[role])));
    }
  }

  /** Kills every process at once (a second Ctrl-C: the operator does not want to wait). */
  kill(): void {
    this.stopping = true;
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      if (slot.child && this.alive(slot.child)) slot.child.process.kill('SIGKILL');
    }
  }

  private alive(child: ClusterChild): boolean {
    return child.process.exitCode === null && child.process.signalCode === null;
  }

  private async terminate(slot: Slot, graceMs: number): Promise<void> {
    const child = slot.child;
    if (!child || !this.alive(child)) return;
    const exited = new Promise<void>((resolve) => child.process.once('exit', () => resolve()));
    // SIGTERM to the process itself, not cluster's worker.kill(), which first cuts the channel
    // to the child, and a cluster child whose channel closes exits at once, unfinished.
    child.process.kill('SIGTERM');
    const force = setTimeout(() => {
      this.options.logger.warn(
        { process: slot.label, pid: child.process.pid, graceMs },
        `${slot.label} did not stop in time: killing it`,
      );
      child.process.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(force);
  }

  private fork(slot: Slot): void {
    const { logger } = this.options;
    // Set before the first fork, when the shared listening socket is created (see the top).
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: this.options.scripts[slot.role], args: [] });
    const child = cluster.fork({ ...this.options.env, [PROCESS_ENV]: slot.label });
    slot.child = child;
    slot.startedAt = Date.now();
    logger.info({ process: slot.label, pid: child.process.pid }, 'process started');

    const ready = () => {
      if (slot.child !== child) return;
      logger.info({ process: slot.label, pid: child.process.pid }, 'process ready');
      slot.started = true;
      this.checkStarted();
    };
    if (slot.role === 'api') {
      child.once('listening', (address) => {
        this.port ??= address.port;
        ready();
      });
      child.on('message', (message: MetricsMessage) => {
        if (message?.stockhold === METRICS.request) void this.answerMetrics(child, message.id);
        else if (message?.stockhold === METRICS.part) this.metricsParts.get(message.id)?.(message.metrics);
      });
    } else {
      child.on('message', (message: unknown) => {
        if ((message as { stockhold?: string } | null)?.stockhold === READY_MESSAGE.stockhold) ready();
      });
    }
    // A failed signal or message must not take the supervisor down (an unhandled 'error' would).
    child.on('error', (err) =>
      logger.warn({ process: slot.label, pid: child.process.pid, err: String(err) }, `${slot.label}: ${String(err)}`),
    );
    child.once('exit', (code, signal) => this.exited(slot, child, code, signal));
  }

  /** Collects every live API process's metrics and sends `asker` their combination. */
  private async answerMetrics(asker: ClusterChild, id: number): Promise<void> {
    const children = this.slots.flatMap((s) =>
      s.role === 'api' && s.child && this.alive(s.child) && s.child.isConnected() ? [s.child] : [],
    );
    const round = this.metricsRound++;
    const parts: MetricsJson[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, METRICS_WAIT_MS);
      this.metricsParts.set(round, (metrics) => {
        parts.push(metrics);
        if (parts.length === children.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      for (const child of children) child.send({ stockhold: METRICS.collect, id: round });
    });
    this.metricsParts.delete(round);
    let text: string | undefined;
    try {
      text = parts.length > 0 ? await AggregatorRegistry.aggregate(parts).metrics() : undefined;
    } catch (err) {
      this.options.logger.warn({ err: String(err) }, "could not combine the API processes' metrics");
    }
    if (asker.isConnected()) asker.send({ stockhold: METRICS.answer, id, text });
  }

  private checkStarted(): void {
    if (this.startWaiter && this.slots.every((s) => s.started)) {
      this.startWaiter.resolve();
      this.startWaiter = undefined;
    }
  }

  private exited(slot: Slot, child: ClusterChild, code: number | null, signal: string | null): void {
    if (slot.child !== child || this.stopping) return;
    const { logger } = this.options;
    const exit = exitOf(code, signal);
    const pid = child.process.pid;
    if (!slot.started && this.startWaiter) {
      // At start: most likely it cannot work at all (a store, a permission); its log says why.
      this.startWaiter.reject(
        new Error(`${slot.label} (pid ${pid}) exited before it was ready (${exit}); its log above says why`),
      );
      this.startWaiter = undefined;
      return;
    }
    if (code === EXIT_CONFIG) {
      logger.error({ process: slot.label, pid, exit }, `${slot.label} refused its configuration: not restarting it`);
      this.options.onFatal?.(`${slot.label} refused its configuration (exit ${EXIT_CONFIG})`);
      return;
    }
    if (Date.now() - slot.startedAt >= this.backoff.stableMs) slot.crashesInARow = 0;
    slot.crashesInARow += 1;
    const delay = restartDelay(slot.crashesInARow, this.backoff);
    logger.error(
      { process: slot.label, pid, exit, crashesInARow: slot.crashesInARow, restartInMs: delay },
      `${slot.label} exited unexpectedly (${exit}): restarting it in ${(delay / 1000).toFixed(1)} s`,
    );
    slot.restartTimer = setTimeout(() => {
      if (!this.stopping) this.fork(slot);
    }, delay);
  }
}
