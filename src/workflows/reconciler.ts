/**
 * reconcilerWorkflow: the one reconciler of a deployment (fixed workflow id, started by every API
 * process with "use existing"), so it survives restarts and shows in the Web UI. It runs the
 * reconcile activity, a long-running one that heartbeats: a worker that dies hands it to another
 * within the heartbeat timeout. Continues as new every so often to keep its history short.
 */
import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { ReconcilerActivities } from '../activities/reconciler';

export const RECONCILER_WORKFLOW_ID = 'stockhold-reconciler';

export interface ReconcilerInput {
  /** How long one activity run lasts before the workflow schedules the next (ms). */
  runMs: number;
}

const { reconcile } = proxyActivities<ReconcilerActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

const RUNS_PER_HISTORY = 50;

export async function reconcilerWorkflow(input: ReconcilerInput): Promise<void> {
  for (let run = 0; run < RUNS_PER_HISTORY; run++) await reconcile({ runMs: input.runMs });
  await continueAsNew<typeof reconcilerWorkflow>(input);
}
