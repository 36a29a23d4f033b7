/** Names of the reference workflow (the bare Temporal baseline of the reservations scenario). */
import { defineUpdate } from '@temporalio/workflow';

export const REFERENCE_WORKFLOW = 'benchReferenceWorkflow';
/** Sent with the start (update-with-start): answers once the local activity has run. */
export const referenceHoldUpdate = defineUpdate<string>('benchHold');
/** The second call: the workflow waits for it, then completes. */
export const referenceCommitUpdate = defineUpdate<string>('benchCommit');
