/**
 * The same change as ./unpatched.ts, done right: behind `patched()`. A history recorded before the
 * change has no patch marker, so on replay `patched()` is false, the sleep is skipped and the
 * commands match; new runs take the new path and record the marker.
 */
import { patched, sleep } from '@temporalio/workflow';
import type { ReservationView } from '../../../src/domain/types';
import type { ReservationInput } from '../../../src/workflows/definitions';
import { reservationWorkflow as realReservationWorkflow } from '../../../src/workflows/reservation';

export const PATCH_ID = 'replay-test-sleep-before-hold';

export async function reservationWorkflow(input: ReservationInput): Promise<ReservationView> {
  if (patched(PATCH_ID)) await sleep('1 ms');
  return realReservationWorkflow(input);
}
