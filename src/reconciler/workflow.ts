/**
 * reconcilerWorkflow: the one reconciler of a deployment (fixed workflow id, started by every API
 * process with "use existing"), so it survives restarts and shows in the Web UI. It runs the
 * reconcile activity, a long-running one that heartbeats: a worker that dies hands it to another
 * within the heartbeat timeout. Continues as new every so often to keep its history short.
 */
import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { Observation, ReconcilerActivities } from './activities';

export const RECONCILER_WORKFLOW_ID = 'stockhold-reconciler';

export interface ReconcilerInput {
  /** How long one activity run lasts before the workflow schedules the next (ms). */
  runMs: number;
  /** The differences the previous run had seen (carried across continue-as-new). */
  seen?: Observation[];
}

// A worker that dies stops heartbeating: another takes the activity over after the heartbeat
// timeout, soon, since drift must be repaired within 30 s of its grace period. 15 s: above the
// longest store call between two heartbeats (PostgreSQL's 10 s statement timeout). Retries come
// quickly and stay quick: a reconciler that cannot reach a store keeps running and says so itself.
const { reconcile } = proxyActivities<ReconcilerActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds' },
});

const RUNS_PER_HISTORY = 50;

export async function reconcilerWorkflow(input: ReconcilerInput): Promise<void> {
  let seen = input.seen;
  for (let run = 0; run < RUNS_PER_HISTORY; run++) {
    // Histories recorded before runs returned their observations have no result here.
    const result = await reconcile({ runMs: input.runMs, seen });
    seen = result?.seen ?? seen;
  }
  await continueAsNew<typeof reconcilerWorkflow>({ ...input, seen });
}
