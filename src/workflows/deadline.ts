import { condition } from '@temporalio/workflow';

/**
 * Waits until `deadlineMs` (workflow clock) or until `stop()` holds, whichever comes first; a
 * deadline moved while waiting restarts the wait (timer-examples' UpdatableTimer, as a function).
 * True when the deadline passed, false when stopped.
 */
export async function untilDeadline(deadlineMs: () => number, stop: () => boolean): Promise<boolean> {
  for (;;) {
    if (stop()) return false;
    const deadline = deadlineMs();
    const remaining = deadline - Date.now();
    if (remaining <= 0) return true;
    await condition(() => stop() || deadlineMs() !== deadline, remaining);
  }
}
