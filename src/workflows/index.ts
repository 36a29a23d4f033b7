export { reservationWorkflow } from './reservation';
export { reconcilerWorkflow } from './reconciler';
