/**
 * The wait for a reservation's expiry, which extends move: until `expiresAtMs()` (workflow clock)
 * or until `stop()` holds, whichever comes first; an expiry moved while waiting restarts the wait
 * (timer-examples' UpdatableTimer, as a function).
 */
import { condition } from '@temporalio/workflow';

/** True when the expiry passed, false when stopped. */
export async function untilExpiry(expiresAtMs: () => number, stop: () => boolean): Promise<boolean> {
  for (;;) {
    if (stop()) return false;
    const expiresAt = expiresAtMs();
    const remaining = expiresAt - Date.now();
    if (remaining <= 0) return true;
    await condition(() => stop() || expiresAtMs() !== expiresAt, remaining);
  }
}
