export { reservationWorkflow } from './reservation';
