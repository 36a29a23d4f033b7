/**
 * A DELIBERATELY BROKEN copy of reservationWorkflow for the replay guard's negative test: it sleeps
 * 1 ms before the hold, which adds a StartTimer command where every recorded history has the hold's
 * local-activity marker, without `patched()`. Replaying a recorded history against it must fail
 * with a DeterminismViolationError. Never register it with a real worker.
 *
 * It wraps the real workflow rather than copying its body, so the deliberate sleep stays the one
 * difference however the real workflow evolves.
 */
import { sleep } from '@temporalio/workflow';
import type { ReservationView } from '../../../src/domain/types';
import type { ReservationInput } from '../../../src/workflows/definitions';
import { reservationWorkflow as realReservationWorkflow } from '../../../src/workflows/reservation';

export async function reservationWorkflow(input: ReservationInput): Promise<ReservationView> {
  await sleep('1 ms'); // the command-altering change, unguarded
  return realReservationWorkflow(input);
}
