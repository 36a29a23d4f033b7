export { reservationWorkflow } from './reservation';
export { reconcilerWorkflow } from '../reconciler/workflow';
export { webhookDispatcherWorkflow } from '../webhooks/workflow';
