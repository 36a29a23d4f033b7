/**
 * Load generator child for the reservations reference: a closed loop of `concurrency` users over
 * one Temporal client, each doing update-with-start (start + "hold" update) and then the "commit"
 * update, exactly as the API does for POST /v1/reservations and its commit, minus everything else.
 */
import { performance } from 'node:perf_hooks';
import { Client, Connection, WithStartWorkflowOperation } from '@temporalio/client';
import { Samples, summarize, type LatencySummary } from '../harness/stats';
import { REFERENCE_WORKFLOW, referenceCommitUpdate, referenceHoldUpdate } from '../reference/definitions';
import { serveJob } from './protocol';

export interface ReferenceClientJob {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  concurrency: number;
  durationS: number;
  warmupS: number;
  idPrefix: string;
}

export interface ReferenceClientResult {
  completed: number;
  rate: number;
  seconds: number;
  reserve: LatencySummary;
  commit: LatencySummary;
  failures: number;
  failureSamples: string[];
}

serveJob<ReferenceClientJob, ReferenceClientResult>(async (job, progress) => {
  const connection = await Connection.connect({ address: job.temporalAddress });
  const client = new Client({ connection, namespace: job.namespace });
  const reserve = new Samples();
  const commit = new Samples();
  const failureSamples: string[] = [];
  let failures = 0;
  let completed = 0;
  let recording = false;
  let seq = 0;

  const lifecycle = async (): Promise<boolean> => {
    const workflowId = `${job.idPrefix}-${seq++}`;
    const start = new WithStartWorkflowOperation(REFERENCE_WORKFLOW, {
      workflowId,
      taskQueue: job.taskQueue,
      args: [],
      workflowIdConflictPolicy: 'FAIL',
    });
    try {
      let t = performance.now();
      await client.workflow.executeUpdateWithStart(referenceHoldUpdate, { args: [], startWorkflowOperation: start });
      if (recording) reserve.push(performance.now() - t);
      t = performance.now();
      await client.workflow.getHandle(workflowId).executeUpdate(referenceCommitUpdate, { args: [] });
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
  const timer = setInterval(
    () => progress(`${Math.round((performance.now() - t0) / 1000)} s: ${completed.toLocaleString('en-US')} lifecycles`),
    2_000,
  );
  await users(t0 + job.durationS * 1000);
  clearInterval(timer);
  await connection.close();
  return {
    completed,
    rate: completed / job.durationS,
    seconds: job.durationS,
    reserve: summarize(reserve.values()),
    commit: summarize(commit.values()),
    failures,
    failureSamples,
  };
});
