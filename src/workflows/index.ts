/**
 * The workflow bundle's entry (the worker's workflowsPath): every workflow of the service, the
 * reservation's here and the deployment-wide ones from their feature folders.
 */
export { reservationWorkflow } from './reservation';
export { reconcilerWorkflow } from '../reconciler/workflow';
export { webhookDispatcherWorkflow } from '../webhooks/workflow';
