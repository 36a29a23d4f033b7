/**
 * The deployment's two long-running workflows, reconcilerWorkflow and webhookDispatcherWorkflow,
 * with mocked activities on the time-skipping server: each runs its activity again and again,
 * continues as new after 50 runs to keep its history short, and the reconciler hands each run's
 * observations (differences under their grace period) to the next run, across continue-as-new
 * and across a failed run.
 */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Observation } from '../../src/reconciler/activities';
import { reconcilerWorkflow, webhookDispatcherWorkflow } from '../../src/workflows';
import { installTestRuntime, taskQueue, timeSkippingEnv, workflowBundle } from '../helpers/temporal';

installTestRuntime();

const RUNS_PER_HISTORY = 50;

let env: TestWorkflowEnvironment;
let client: Client;

beforeAll(async () => {
  env = await timeSkippingEnv();
  client = env.client;
  await workflowBundle();
});

afterAll(async () => {
  await env?.teardown();
});

/**
 * Runs a worker with `activities` until `done()` holds (no deadline of its own: the test's jest
 * timeout is one), then terminates the workflow; the status of its first run (CONTINUED_AS_NEW once it has).
 */
async function runUntil(
  queue: string,
  activities: object,
  done: () => boolean,
  start: () => Promise<WorkflowHandleWithFirstExecutionRunId>,
): Promise<string> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: queue,
    workflowBundle: await workflowBundle(),
    activities,
  });
  return worker.runUntil(async () => {
    const handle = await start();
    while (!done()) await new Promise((resolve) => setTimeout(resolve, 20));
    const first = await client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).describe();
    await handle.terminate();
    return first.status.name;
  });
}

describe('reconcilerWorkflow', () => {
  it('hands each run the observations the previous run returned, across continue-as-new and after a failed run', async () => {
    const queue = taskQueue('reconciler');
    const inputs: { runMs: number; seen?: Observation[] }[] = [];
    const observed = (n: number): Observation[] => [{ key: `phantom:SKU-${n}`, since: n, what: `${n}` }];
    let failedOnce = false;
    const activities = {
      async reconcile(input: { runMs: number; seen?: Observation[] }) {
        inputs.push(input);
        // Run 3 fails once (its worker died, say): the retry gets the same input.
        if (inputs.length === 3 && !failedOnce) {
          failedOnce = true;
          throw ApplicationFailure.retryable('worker lost');
        }
        return { seen: observed(inputs.length) };
      },
    };
    const firstRun = await runUntil(
      queue,
      activities,
      () => inputs.length >= RUNS_PER_HISTORY + 3,
      () =>
        client.workflow.start(reconcilerWorkflow, {
          taskQueue: queue,
          workflowId: `reconciler-${queue}`,
          args: [{ runMs: 1_000 }],
        }),
    );

    expect(inputs[0]).toEqual({ runMs: 1_000 }); // nothing seen yet
    expect(inputs[1]!.seen).toEqual(observed(1));
    expect(inputs[3]).toEqual(inputs[2]); // the retry of the failed run: the same observations
    expect(inputs[4]!.seen).toEqual(observed(4));
    // 51 activity executions (one retried) make the 50 runs of the first history; the first run of
    // the next history starts from the last observations of the one before.
    expect(inputs[RUNS_PER_HISTORY + 1]!.seen).toEqual(observed(RUNS_PER_HISTORY + 1));
    expect(inputs.every((i) => i.runMs === 1_000)).toBe(true);
    expect(firstRun).toBe('CONTINUED_AS_NEW');
  }, 90_000);
});

describe('webhookDispatcherWorkflow', () => {
  it('runs its activity again and again and continues as new after 50 runs', async () => {
    const queue = taskQueue('dispatcher');
    const inputs: { runMs: number }[] = [];
    const activities = {
      async dispatchWebhooks(input: { runMs: number }) {
        inputs.push(input);
      },
    };
    const firstRun = await runUntil(
      queue,
      activities,
      () => inputs.length >= RUNS_PER_HISTORY + 2,
      () =>
        client.workflow.start(webhookDispatcherWorkflow, {
          taskQueue: queue,
          workflowId: `dispatcher-${queue}`,
          args: [{ runMs: 500 }],
        }),
    );
    expect(inputs.slice(0, RUNS_PER_HISTORY + 2)).toEqual(
      Array.from({ length: RUNS_PER_HISTORY + 2 }, () => ({ runMs: 500 })),
    );
    expect(firstRun).toBe('CONTINUED_AS_NEW');
  }, 90_000);
});
