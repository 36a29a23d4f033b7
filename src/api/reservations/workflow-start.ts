/**
 * How a reservation's workflow is started: update-with-start of reservationWorkflow, its options
 * (id, conflict and reuse policies, memo, search attributes) and the hold update's arguments. One
 * function, used by the API (./service.ts) and by the benchmark's same-shape floor
 * (bench/children/reference-client.ts), so that floor starts exactly what the service starts.
 */
import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation } from '@temporalio/client';
import type { Config } from '../../config';
import { reservationRequestHash } from '../../domain/request-hash';
import { workflowIdOf, type CartLine } from '../../domain/types';
import { reservationWorkflow } from '../../workflows';
import { searchableSkus, searchAttributes, type AwaitHoldArgs } from '../../workflows/definitions';

/** A reservation request as its workflow starts: the client's, with the id and TTL filled in. */
export interface StartRequest {
  reservationId: string;
  items: CartLine[];
  ttlSeconds: number;
  customerId?: string;
  /** The channel the cart is held through (contract v3); absent: `default`. */
  channel?: string;
}

export function reservationStart(
  request: StartRequest,
  config: Pick<Config, 'taskQueue' | 'maxTtlSeconds'>,
): {
  workflowId: string;
  requestHash: string;
  operation: WithStartWorkflowOperation<typeof reservationWorkflow>;
  hold: AwaitHoldArgs;
} {
  const { reservationId, items, ttlSeconds, customerId, channel } = request;
  const requestHash = reservationRequestHash({ items, ttlSeconds, customerId, channel });
  const startToken = randomUUID();
  const workflowId = workflowIdOf(reservationId);
  const operation = new WithStartWorkflowOperation(reservationWorkflow, {
    workflowId,
    taskQueue: config.taskQueue,
    args: [
      {
        reservationId,
        items,
        ttlSeconds,
        maxTtlSeconds: config.maxTtlSeconds,
        customerId,
        requestHash,
        startToken,
        ...(channel !== undefined ? { channel } : {}),
      },
    ],
    // A repeat joins the running workflow; a closed one's id is reused only after a failed run.
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    memo: { requestHash },
    typedSearchAttributes: [
      { key: searchAttributes.status, value: 'PENDING' },
      { key: searchAttributes.skus, value: searchableSkus(items.map((i) => i.sku)) },
      ...(customerId ? [{ key: searchAttributes.customerId, value: customerId }] : []),
      // Set at the start (no workflow command, so no patch), and only for a named channel: a
      // v2 request needs nothing a server registered before v3 lacks.
      ...(channel !== undefined && channel !== 'default'
        ? [{ key: searchAttributes.salesChannel, value: channel }]
        : []),
    ],
  });
  return { workflowId, requestHash, operation, hold: { requestHash, startToken } };
}
