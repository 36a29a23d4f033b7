/**
 * webhookDispatcherWorkflow: the one webhook dispatcher of a deployment (fixed workflow id, started
 * by every API process with "use existing", like the reconciler). It runs the dispatchWebhooks
 * activity, a long-running one that heartbeats its progress (shown on the pending activity in the
 * Web UI): a worker that dies hands it to another within the heartbeat timeout, and since every
 * delivery's state is in PostgreSQL, the next run carries on where the last one stopped.
 * Continues as new every so often to keep its history short.
 */
import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { WebhookActivities } from './activities';

export const WEBHOOK_DISPATCHER_WORKFLOW_ID = 'stockhold-webhook-dispatcher';

export interface WebhookDispatcherInput {
  /** How long one activity run lasts before the workflow schedules the next (ms). */
  runMs: number;
}

const { dispatchWebhooks } = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '10 minutes',
  // Short, so deliveries resume soon after a worker dies (the activity heartbeats several times a second).
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

const RUNS_PER_HISTORY = 50;

export async function webhookDispatcherWorkflow(input: WebhookDispatcherInput): Promise<void> {
  for (let run = 0; run < RUNS_PER_HISTORY; run++) await dispatchWebhooks({ runMs: input.runMs });
  await continueAsNew<typeof webhookDispatcherWorkflow>(input);
}
