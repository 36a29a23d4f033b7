/**
 * The reservations scenario's reference: the least a reservation's Temporal round trips can cost
 * on the same server. Update-with-start into one local activity (that does nothing), then wait
 * for one update and complete. No search attributes, no I/O.
 */
import { condition, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import { referenceCommitUpdate, referenceHoldUpdate } from './definitions';

const { benchNoop } = proxyLocalActivities<{ benchNoop(): Promise<void> }>({ startToCloseTimeout: '5 seconds' });

export async function benchReferenceWorkflow(): Promise<string> {
  let held = false;
  let committed = false;
  setHandler(referenceHoldUpdate, async () => {
    await condition(() => held);
    return 'HELD';
  });
  setHandler(referenceCommitUpdate, async () => {
    committed = true;
    return 'COMMITTED';
  });
  await benchNoop();
  held = true;
  await condition(() => committed);
  return 'COMMITTED';
}
