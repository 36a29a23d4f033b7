/**
 * What /readyz checks: that each backing store answers, and that it will serve what a client asks
 * for now. Redis answering is not enough while its counters are being rebuilt after a loss (every
 * stock read answers 503 then): that is `loading`. Temporal answering is not enough while no worker
 * polls the task queue (a reservation would wait for its deadline and answer 503): `no-worker`.
 */
import { temporal as proto } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import type { StockClients } from '../stock';

/** A check's state: `ok`, or why a client would not be served now. */
export type CheckState = 'ok' | 'down' | 'loading' | 'no-worker';

/** A check resolves (to `loading` or `no-worker` when it says so; anything else is `ok`) or throws: `down`. */
export type ReadinessCheck = () => Promise<unknown>;

/** The state a check's answer stands for. */
export function stateOf(answer: unknown): CheckState {
  return answer === 'loading' || answer === 'no-worker' ? answer : 'ok';
}

/** The service's checks over its own clients. */
export function readinessChecks(
  stock: StockClients,
  temporal: Client,
  namespace: string,
  taskQueue: string,
): Record<'redis' | 'postgres' | 'temporal', ReadinessCheck> {
  return {
    redis: async () => ((await stock.stock.countersLoaded()) ? 'ok' : 'loading'),
    postgres: () => stock.stock.databaseAnswers(),
    temporal: async () => {
      // Temporal lists a task queue's pollers of the last few minutes: none means no worker has
      // polled it yet (a first start) or for minutes.
      const described = await temporal.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: taskQueue, kind: proto.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      });
      return (described.pollers ?? []).length > 0 ? 'ok' : 'no-worker';
    },
  };
}
