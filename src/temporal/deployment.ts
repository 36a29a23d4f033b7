/**
 * The workflows that run once per deployment, each with a fixed id: any API process may ensure
 * they run (at its start, then every minute), and Temporal keeps exactly one of each.
 */
import type { Client } from '@temporalio/client';
import { RECONCILER_WORKFLOW_ID, reconcilerWorkflow } from '../reconciler/workflow';
import { WEBHOOK_DISPATCHER_WORKFLOW_ID, webhookDispatcherWorkflow } from '../webhooks/workflow';

/** How long one run of the reconcile activity lasts before the workflow schedules the next. */
const RECONCILE_RUN_MS = 5 * 60_000;

/** Starts the deployment's reconciler workflow unless it runs already (idempotent: any process may call it). */
export async function ensureReconciler(client: Client, taskQueue: string): Promise<void> {
  await client.workflow.start(reconcilerWorkflow, {
    workflowId: RECONCILER_WORKFLOW_ID,
    taskQueue,
    args: [{ runMs: RECONCILE_RUN_MS }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/** How long one run of the dispatchWebhooks activity lasts before the workflow schedules the next. */
const WEBHOOK_RUN_MS = 5 * 60_000;

/** Starts the deployment's webhook dispatcher workflow unless it runs already (idempotent: any process may call it). */
export async function ensureWebhookDispatcher(
  client: Client,
  taskQueue: string,
  runMs = WEBHOOK_RUN_MS,
): Promise<void> {
  await client.workflow.start(webhookDispatcherWorkflow, {
    workflowId: WEBHOOK_DISPATCHER_WORKFLOW_ID,
    taskQueue,
    args: [{ runMs }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}
