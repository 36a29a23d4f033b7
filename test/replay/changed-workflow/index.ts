/** Workflows entry point of the deliberately non-deterministic copy (see ./unpatched.ts). */
export { reservationWorkflow } from './unpatched';
