export { reservationWorkflow } from './reservation';
export { reconcilerWorkflow } from './reconciler';
export { webhookDispatcherWorkflow } from './webhook-dispatcher';
