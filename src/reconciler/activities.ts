/**
 * The reconciler's activity: for a run of a few minutes, rebuilds Redis after a full loss (fenced)
 * and compares every SKU with PostgreSQL at an interval (./reconciler.ts), heartbeating what it has
 * seen so a takeover goes on with the same grace periods.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { workflowIdOf } from '../domain/types';
import type { Logger } from '../logger';
import type { StockStore } from '../stock';
import { rebuildIfLost } from './rebuild';
import { Reconciler, type Observation, type ReconcilerEvent } from './reconciler';

export type { Observation };

export interface ReconcilerSettings {
  /** Pause between two comparisons of every SKU (ms). */
  intervalMs: number;
  /** How long a difference must last before it is repaired: longer than any hold, commit or release attempt (ms). */
  graceMs: number;
  /** How long a rebuild waits for holds in flight to land before reading PostgreSQL (ms). */
  rebuildSettleMs: number;
}

/** What the reconcile activity heartbeats and returns: the differences it has seen (see Reconciler.observations). */
export interface ReconcilerProgress {
  seen: Observation[];
}

/** How often the activity looks for a lost `loaded` marker (a full Redis loss) between scans. */
const MARKER_CHECK_MS = 1_000;

/**
 * How long a scan waits for Temporal to say which stale reservations run. A Temporal that does not
 * answer must not hold the scan (every other repair, and the rebuild, wait behind it, and the
 * activity's heartbeats stop): past it, the rest count as running (unsure).
 */
const RUNNING_CHECK_DEADLINE_MS = 5_000;

/** The reservations among `ids` whose workflow is running; when Temporal cannot tell, assume running. */
async function runningReservations(client: Client, ids: readonly string[]): Promise<Set<string>> {
  const running = new Set<string>();
  const deadline = Date.now() + RUNNING_CHECK_DEADLINE_MS;
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(
      ids.slice(i, i + 20).map(async (id) => {
        try {
          const description = await client.withDeadline(deadline, () =>
            client.workflow.getHandle(workflowIdOf(id)).describe(),
          );
          if (description.status.name === 'RUNNING') running.add(id);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) running.add(id); // unsure: never release on a guess
        }
      }),
    );
  }
  return running;
}

/**
 * The reconciler's activity (see src/reconciler/workflow.ts): for `runMs` it rebuilds Redis
 * after a full loss (fenced) and compares every SKU with PostgreSQL every `intervalMs`,
 * heartbeating as it goes. Store errors end nothing: an unreachable store is tried again next time.
 */
export function createReconcilerActivities(deps: {
  stock: StockStore;
  temporal: Client;
  logger: Logger;
  settings: ReconcilerSettings;
}) {
  const { stock, temporal, logger, settings } = deps;
  const report = (event: ReconcilerEvent) => {
    const fields = { reconcile: event.kind, sku: event.sku, reservationId: event.reservationId, ...event.detail };
    if (event.alert)
      logger.error(fields, `reconciler: ${event.kind} (drift it cannot explain)${event.repaired ? ', repaired' : ''}`);
    else logger.info(fields, `reconciler: ${event.kind}`);
  };
  // Every heartbeat carries what the reconciler has seen: a retry of the activity (its worker
  // died) reads it back from the last heartbeat, so the grace periods under way go on.
  const beat = () => Context.current().heartbeat({ seen: reconciler.observations() } satisfies ReconcilerProgress);
  const reconciler: Reconciler = new Reconciler(stock, {
    graceMs: settings.graceMs,
    running: (ids) => runningReservations(temporal, ids),
    report,
    progress: beat,
  });

  return {
    /**
     * Runs for `runMs`, going on from `seen` (the previous run's observations), or from the last
     * heartbeat of this same activity when it is a retry; returns its observations for the next run.
     */
    async reconcile(input: { runMs: number; seen?: Observation[] }): Promise<ReconcilerProgress> {
      const context = Context.current();
      const resumed = (context.info.heartbeatDetails as ReconcilerProgress | undefined)?.seen ?? input.seen;
      if (resumed) reconciler.restore(resumed);
      const until = Date.now() + input.runMs;
      let nextScan = 0;
      while (Date.now() < until) {
        beat();
        try {
          const rebuilt = await rebuildIfLost(stock, { settleMs: settings.rebuildSettleMs });
          if (rebuilt !== undefined) {
            logger.warn({ skus: rebuilt }, 'reconciler: Redis had lost its counters: rebuilt them from PostgreSQL');
            await stock.drift.count('rebuild');
          }
          if (Date.now() >= nextScan) {
            await reconciler.scan();
            await stock.drift.count('scan');
            nextScan = Date.now() + settings.intervalMs;
          }
        } catch (err) {
          logger.warn({ err: String(err) }, 'reconciler: a store is not reachable; trying again');
        }
        try {
          await context.sleep(MARKER_CHECK_MS);
        } catch {
          break; // cancelled: the worker is shutting down
        }
      }
      return { seen: reconciler.observations() };
    },
  };
}

export type ReconcilerActivities = ReturnType<typeof createReconcilerActivities>;
