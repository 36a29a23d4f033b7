/**
 * Replay guard: every history in ./histories (recorded from real runs by
 * `npm run record-histories`, scripts/record-histories.ts) must replay against the current
 * workflow code without a determinism error. A change that alters the workflow's commands for
 * runs already in flight must go behind `patched()`; this test fails otherwise, as the negative
 * test below shows with a deliberately changed copy of the workflow.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { History } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker, type ReplayResult } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { historyFromJson } from './histories';

// The negative test's failures are expected: keep the SDK's (and its native core's) warnings about
// the failed workflow tasks out of the output; real failures surface through the assertions.
Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
});

const HISTORIES_DIR = path.join(__dirname, 'histories');
const SCENARIOS = [
  'extend-commit',
  'hold-cancel',
  'hold-commit',
  'hold-expire',
  'partial-commit',
  'payment-failed-cancel',
  'payment-signal-commit',
  'rejected',
  'split-line-commit',
  'pinned-line-commit',
];

const files = readdirSync(HISTORIES_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

function load(file: string): { workflowId: string; history: History } {
  const json: unknown = JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8'));
  return { workflowId: path.basename(file, '.json'), history: historyFromJson(json) };
}

/** Replays the histories one by one in a replay worker over `workflowsPath`; results by scenario. */
async function replay(workflowsPath: string, names: string[] = files): Promise<Map<string, ReplayResult>> {
  const results = new Map<string, ReplayResult>();
  for await (const result of Worker.runReplayHistories(
    { workflowsPath, replayName: 'replay-guard' },
    names.map(load),
  )) {
    results.set(result.workflowId, result);
  }
  return results;
}

const describeError = (result: ReplayResult | undefined): string =>
  result?.error ? `${result.error.name}: ${result.error.message}` : String(result?.error);

describe('replay of recorded histories', () => {
  it('has a recorded history for every scenario', () => {
    expect(files.map((f) => path.basename(f, '.json'))).toEqual(expect.arrayContaining(SCENARIOS));
    for (const file of files) {
      const { history } = load(file);
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      expect(started?.workflowType?.name).toBe('reservationWorkflow');
      expect(history.events!.at(-1)?.workflowExecutionCompletedEventAttributes).toBeTruthy();
    }
  });

  describe('against the current workflow code', () => {
    let results: Map<string, ReplayResult>;
    beforeAll(async () => {
      results = await replay(require.resolve('../../src/workflows'));
    });

    it.each(files)('%s replays without a determinism error', (file) => {
      const result = results.get(path.basename(file, '.json'));
      expect(result).toBeDefined();
      expect(result!.runId).toMatch(/\S/);
      // The message names the first mismatching command: read it when this fails.
      expect(describeError(result)).toBe('undefined');
    });
  });

  describe('the guard itself', () => {
    it('catches a command-altering change without patched(): DeterminismViolationError', async () => {
      const results = await replay(require.resolve('./changed-workflow'));
      expect(results.size).toBe(files.length);
      const holdCommit = results.get('hold-commit');
      expect(holdCommit?.error).toBeInstanceOf(DeterminismViolationError);
      expect(holdCommit?.error?.name).toBe('DeterminismViolationError');
      // Every recorded run starts with the hold, so the change breaks all of them.
      for (const [name, result] of results) {
        expect([name, result.error?.name]).toEqual([name, 'DeterminismViolationError']);
      }
    });

    it('accepts the same change behind patched()', async () => {
      const results = await replay(require.resolve('./changed-workflow/patched'));
      expect(results.size).toBe(files.length);
      for (const [name, result] of results) {
        expect([name, describeError(result)]).toEqual([name, 'undefined']);
      }
    });
  });
});
