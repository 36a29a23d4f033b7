/**
 * The short version of `npm run faults`: one stack (the service's API and worker as processes
 * from lib/, over a redis-server, a PostgreSQL 15 cluster and a Temporal dev server of the test's
 * own), and for each fault kind a few seconds of mixed traffic, the fault (aimed at work in
 * flight; one that hit nothing fails), the heal check from the stores themselves, the look again
 * once every reservation has ended, what clients were told judged against PostgreSQL (no broken
 * promise, no answer it contradicts), and the reconciler's unexplained counts (none where Redis
 * lost nothing) (faults/harness/phase.ts). A failure lists every invariant that broke.
 * Logs of the service and the stores, and each kind's whole result (findings, what each fault
 * hit, evidence for the reservations a finding names): build/faults/test-logs/.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/paths';
import { faultNamed, SHORT_TIMING } from '../../faults/harness/faults';
import { RunState, runPhase, type PhaseResult } from '../../faults/harness/phase';
import { stopEverything } from '../../faults/harness/procs';
import { startStack, type Stack } from '../../faults/harness/stack';
import { SHORT_WORKLOAD } from '../../faults/harness/workload';

const LOG_DIR = path.join(PROJECT_ROOT, 'build', 'faults', 'test-logs');
/** Most faults heal in seconds; partial loss waits for the reconciler's grace period and a scan. */
const HEAL_TIMEOUT_MS = 40_000;
const RECONCILER_HEAL_TIMEOUT_MS = 60_000;

/**
 * The reconciler scans every 2 s instead of 10 s, with a 10 s grace period instead of 15 s: the
 * same repairs, sooner. The grace stays above the longest hold, commit or release attempt
 * (10 s start-to-close), so work in flight is still never "repaired".
 */
const RECONCILER_ENV = { RECONCILE_INTERVAL_MS: '2000', RECONCILE_GRACE_MS: '10000' };

let stack: Stack;
const state = new RunState();
const quiet = process.env.FAULTS_VERBOSE ? (msg: string) => console.log(msg) : () => undefined;

beforeAll(async () => {
  rmSync(LOG_DIR, { recursive: true, force: true });
  // FAULTS_REV=<git revision>: test that revision's service (compiled afresh) instead of lib/.
  stack = await startStack({
    logDir: LOG_DIR,
    workload: SHORT_WORKLOAD,
    log: quiet,
    rev: process.env.FAULTS_REV,
    serviceEnv: RECONCILER_ENV,
  });
}, 180_000);

afterAll(async () => {
  await stopEverything();
}, 60_000);

/** Runs one kind and returns what broke (an empty list when every invariant held). */
async function broken(kind: string, healTimeoutMs = HEAL_TIMEOUT_MS): Promise<string[]> {
  const fault = faultNamed(kind);
  if (!fault) throw new Error(`no fault kind ${kind}`);
  const result: PhaseResult = await runPhase(stack, state, kind, [fault], SHORT_TIMING, { healTimeoutMs, log: quiet });
  writeFileSync(path.join(LOG_DIR, `${kind}.json`), `${JSON.stringify(result, null, 2)}\n`);
  expect(result.operations).toBeGreaterThan(0);
  return result.failures;
}

const PHASE_TIMEOUT_MS = 150_000;

test(
  "a Redis wiped mid-sale (FLUSHALL, then kill -9 and an empty restart) heals to PostgreSQL's figures without overselling",
  async () => {
    expect(await broken('redis-wipe')).toEqual([]);
  },
  PHASE_TIMEOUT_MS,
);

test(
  "a Redis that lost some writes (old values restored over new ones, holds dropped while a crowd buys) breaks no promise and is repaired to PostgreSQL's figures",
  async () => {
    expect(await broken('redis-partial', RECONCILER_HEAL_TIMEOUT_MS)).toEqual([]);
  },
  PHASE_TIMEOUT_MS,
);

test(
  'a frozen Redis gets 503s within the deadlines, never a hang, and loses nothing',
  async () => {
    expect(await broken('redis-freeze')).toEqual([]);
  },
  PHASE_TIMEOUT_MS,
);

test(
  'a PostgreSQL crash mid-commit loses no sale a client heard and leaves no reservation wedged',
  async () => {
    expect(await broken('pg-crash')).toEqual([]);
  },
  PHASE_TIMEOUT_MS,
);

test(
  'a Temporal server killed and restarted on its state file still finishes every reservation',
  async () => {
    expect(await broken('temporal-kill')).toEqual([]);
  },
  PHASE_TIMEOUT_MS,
);

test(
  'a worker killed at random moments finishes every reservation with exactly one sale per line',
  async () => {
    expect(await broken('worker-kill')).toEqual([]);
  },
  PHASE_TIMEOUT_MS,
);

test(
  'an API killed mid-request loses no sale, leaves no hold behind and answers again on restart',
  async () => {
    expect(await broken('api-kill')).toEqual([]);
  },
  PHASE_TIMEOUT_MS,
);

test(
  'clients resending after their own timeouts, with and without a reservation id, never hold or sell twice',
  async () => {
    expect(await broken('client-resend')).toEqual([]);
  },
  PHASE_TIMEOUT_MS,
);
