/**
 * Load generator child for the reservations references: a closed loop of `concurrency` users over
 * one Temporal client made as the API makes its own (src/temporal/connection.ts), each doing
 * update-with-start (start + "hold" update) and then the "commit" update, as the API does for
 * POST /v1/reservations and its commit, minus everything else. `shape` (reference-worker.ts):
 * `bare` starts the bare workflow; `same` starts the service's reservationWorkflow with the API's
 * own start (src/api/reservations/workflow-start.ts) and sends the API's commit update.
 */
import { performance } from 'node:perf_hooks';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { reservationStart } from '../../src/api/reservations/workflow-start';
import { connectClient } from '../../src/temporal/connection';
import { awaitHoldUpdate, commitUpdate } from '../../src/workflows/definitions';
import { Samples, summarize, type LatencySummary } from '../harness/stats';
import { REFERENCE_WORKFLOW, referenceCommitUpdate, referenceHoldUpdate } from '../reference/definitions';
import { serveJob } from './protocol';
import type { ReferenceShape } from './reference-worker';

export interface ReferenceClientJob {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  concurrency: number;
  durationS: number;
  warmupS: number;
  idPrefix: string;
  shape: ReferenceShape;
  /** The SKUs the `same` shape's carts name (one unit each, in turn), as the service's run does. */
  skus: string[];
}

export interface ReferenceClientResult {
  completed: number;
  rate: number;
  seconds: number;
  reserve: LatencySummary;
  commit: LatencySummary;
  failures: number;
  failureSamples: string[];
  /**
   * This client's own CPU per lifecycle measured (its Temporal client and core threads, over the
   * measured seconds): the share of the API's CPU that a reference spends here, in its load
   * generator, where the service spends it in the API process.
   */
  clientCpuMsPerLifecycle: number;
}

serveJob<ReferenceClientJob, ReferenceClientResult>(async (job, progress) => {
  const client = await connectClient({ temporalAddress: job.temporalAddress, temporalNamespace: job.namespace });
  const reserve = new Samples();
  const commit = new Samples();
  const failureSamples: string[] = [];
  let failures = 0;
  let completed = 0;
  let recording = false;
  let seq = 0;

  /** Start and hold, then commit: the two calls of one lifecycle, in the job's shape. */
  const calls = (n: number): { hold: () => Promise<unknown>; commit: () => Promise<unknown> } => {
    const id = `${job.idPrefix}-${n}`;
    if (job.shape === 'same') {
      const sku = job.skus[n % job.skus.length]!;
      const start = reservationStart(
        { reservationId: id, items: [{ sku, quantity: 1 }], ttlSeconds: 600 },
        { taskQueue: job.taskQueue, maxTtlSeconds: 86_400 },
      );
      return {
        hold: () =>
          client.workflow.executeUpdateWithStart(awaitHoldUpdate, {
            args: [start.hold],
            startWorkflowOperation: start.operation,
          }),
        commit: () =>
          client.workflow
            .getHandle(start.workflowId)
            .executeUpdate(commitUpdate, { args: [{ paymentId: `pay-${id}` }] }),
      };
    }
    const start = new WithStartWorkflowOperation(REFERENCE_WORKFLOW, {
      workflowId: id,
      taskQueue: job.taskQueue,
      args: [],
      workflowIdConflictPolicy: 'FAIL',
    });
    return {
      hold: () =>
        client.workflow.executeUpdateWithStart(referenceHoldUpdate, { args: [], startWorkflowOperation: start }),
      commit: () => client.workflow.getHandle(id).executeUpdate(referenceCommitUpdate, { args: [] }),
    };
  };

  const lifecycle = async (): Promise<boolean> => {
    const call = calls(seq++);
    try {
      let t = performance.now();
      await call.hold();
      if (recording) reserve.push(performance.now() - t);
      t = performance.now();
      await call.commit();
      if (recording) commit.push(performance.now() - t);
      return true;
    } catch (err) {
      failures += 1;
      if (failureSamples.length < 5) failureSamples.push(String(err));
      return false;
    }
  };
  const users = (until: number) =>
    Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (performance.now() < until) {
          if ((await lifecycle()) && recording && performance.now() <= until) completed += 1;
        }
      }),
    );

  await users(performance.now() + job.warmupS * 1000);
  recording = true;
  failures = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const timer = setInterval(
    () => progress(`${Math.round((performance.now() - t0) / 1000)} s: ${completed.toLocaleString('en-US')} lifecycles`),
    2_000,
  );
  await users(t0 + job.durationS * 1000);
  const cpu = process.cpuUsage(cpu0);
  clearInterval(timer);
  await client.connection.close();
  return {
    completed,
    rate: completed / job.durationS,
    seconds: job.durationS,
    reserve: summarize(reserve.values()),
    commit: summarize(commit.values()),
    failures,
    failureSamples,
    clientCpuMsPerLifecycle: (cpu.user + cpu.system) / 1000 / Math.max(1, completed),
  };
});
