import { randomUUID } from 'node:crypto';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { TEMPORAL_CLI, TEMPORAL_TEST_SERVER } from '../../src/temporal';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/workflows/definitions';

/** The time-skipping test server installed by `npm run setup` (never downloaded). */
export function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: TEMPORAL_TEST_SERVER } } });
}

/** A real Temporal dev server (the CLI installed by `npm run setup`) with the contract's search attributes. */
export function devServerEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: TEMPORAL_CLI }, searchAttributes: SEARCH_ATTRIBUTE_KEYS, ip: '127.0.0.1' },
  });
}

let bundle: Promise<WorkflowBundle> | undefined;
/** Bundles the workflows once per test file; every worker of the file reuses it. */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: quietLogger });
  return bundle;
}

const noop = () => undefined;
export const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

export const taskQueue = (name = 'test') => `${name}-${randomUUID()}`;
