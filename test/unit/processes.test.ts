/**
 * The supervisor of `npm start` (src/processes/supervisor.ts) over stand-in children: tiny scripts that
 * listen on the shared port (API) or report ready (worker), so what is tested is the supervision
 * itself: the shared port, restarts with their backoff and log lines, a start that fails, a
 * configuration refusal, and the order of the stop. Everything runs on 127.0.0.1 in ~2 s.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { alive } from '../helpers/processes';
import { restartDelay, Supervisor, type SupervisorOptions } from '../../src/processes/supervisor';

const dir = mkdtempSync(path.join(tmpdir(), 'stockhold-supervisor-'));
const API = path.join(dir, 'api.js');
const WORKER = path.join(dir, 'worker.js');

// Stand-ins. FAKE_FAIL_AT_START names a process that exits with code 3 before it is ready;
// SIGUSR2 makes a process exit 78 (a configuration refusal); on SIGTERM each appends "<label>
// term" to FAKE_DIR/stops, and "<label> exit" just before it exits (a worker takes 200 ms to
// stop, as finishing a task would): the file is the order of the stop, as it happened.
const COMMON = `
const fs = require('node:fs');
const label = process.env.STOCKHOLD_PROCESS;
if (process.env.FAKE_FAIL_AT_START === label) process.exit(3);
process.on('SIGUSR2', () => process.exit(78));
process.on('SIGINT', () => undefined);
const note = (what) => fs.appendFileSync(process.env.FAKE_DIR + '/stops', label + ' ' + what + '\\n');
const stopped = (delay) => process.on('SIGTERM', () => {
  note('term');
  setTimeout(() => {
    note('exit');
    process.exit(0);
  }, delay);
});
`;
writeFileSync(
  API,
  `${COMMON}
stopped(50);
require('node:http').createServer((req, res) => res.end(label)).listen(0, '127.0.0.1');
`,
);
writeFileSync(
  WORKER,
  `${COMMON}
stopped(200);
setInterval(() => undefined, 1000);
setTimeout(() => process.send({ stockhold: 'ready' }), 50);
`,
);

interface LogLine {
  msg: string;
  process?: string;
  pid?: number;
  exit?: string;
  restartInMs?: number;
}
const logs: LogLine[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });

let supervisor: Supervisor | undefined;
// Jest gives each test file a copy of process.env, which cluster.fork never sees: the stand-ins'
// settings go through the supervisor's own `env` option.
let failAtStart: string | undefined;
const supervise = (options: Partial<SupervisorOptions> = {}) =>
  (supervisor = new Supervisor({
    scripts: { api: API, worker: WORKER },
    counts: { api: 2, worker: 2 },
    logger,
    backoff: { firstMs: 100, maxMs: 1_000, stableMs: 60_000 },
    env: { FAKE_DIR: dir, ...(failAtStart ? { FAKE_FAIL_AT_START: failAtStart } : {}) },
    ...options,
  }));

afterEach(async () => {
  await supervisor?.stop({ api: 2_000, worker: 2_000 });
  supervisor = undefined;
  failAtStart = undefined;
  logs.length = 0;
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `done`, which `what` names for the reader. No deadline of its own: the test's jest timeout is one. */
async function until(what: string, done: () => boolean): Promise<void> {
  while (!done()) await sleep(20);
}

/** Which process answers a request on a connection of its own. */
function answerOn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

const pidOf = (label: string) => supervisor?.processes().find((p) => p.label === label)?.pid;

describe('the supervisor', () => {
  it('runs the API processes on one port, restarts a crashed process after a short delay, and stops them all', async () => {
    const { port } = await supervise().start();
    expect(
      supervisor!
        .processes()
        .map((p) => p.label)
        .sort(),
    ).toEqual(['api-1', 'api-2', 'worker-1', 'worker-2']);

    // One shared socket: both API processes take connections from it.
    const answers = await Promise.all(Array.from({ length: 10 }, () => answerOn(port)));
    expect(new Set(answers)).toEqual(new Set(['api-1', 'api-2']));

    for (const label of ['api-1', 'worker-2']) {
      const before = pidOf(label)!;
      process.kill(before, 'SIGKILL');
      await until(`${label} restarted`, () => pidOf(label) !== undefined && pidOf(label) !== before);
      expect(logs).toContainEqual(
        expect.objectContaining({
          process: label,
          pid: before,
          exit: 'signal SIGKILL',
          restartInMs: 100,
          msg: `${label} exited unexpectedly (signal SIGKILL): restarting it in 0.1 s`,
        }),
      );
      expect(logs.filter((l) => l.msg === 'process started' && l.process === label)).toHaveLength(2);
    }
    // The restarted API process takes connections on the same port again.
    const readyAgain = (label: string) =>
      logs.filter((l) => l.msg === 'process ready' && l.process === label).length === 2;
    await until('api-1 and worker-2 ready again', () => readyAgain('api-1') && readyAgain('worker-2'));
    const again = await Promise.all(Array.from({ length: 10 }, () => answerOn(port)));
    expect(new Set(again)).toEqual(new Set(['api-1', 'api-2']));

    const pids = supervisor!.processes().map((p) => p.pid);
    rmSync(path.join(dir, 'stops'), { force: true });
    await supervisor!.stop({ api: 2_000, worker: 2_000 });
    expect(pids.filter(alive)).toEqual([]);
    // API processes first: every worker got its SIGTERM after the last API process had exited.
    const stops = readFileSync(path.join(dir, 'stops'), 'utf8').trim().split('\n');
    const at = (line: string) => stops.indexOf(line);
    expect(stops.slice().sort()).toEqual([
      'api-1 exit',
      'api-1 term',
      'api-2 exit',
      'api-2 term',
      'worker-1 exit',
      'worker-1 term',
      'worker-2 exit',
      'worker-2 term',
    ]);
    expect(Math.min(at('worker-1 term'), at('worker-2 term')) > Math.max(at('api-1 exit'), at('api-2 exit'))).toBe(
      true,
    );
  });

  it('backs off: each crash in a row doubles the delay, up to the maximum', () => {
    expect([1, 2, 3, 4, 7, 20].map((n) => restartDelay(n))).toEqual([500, 1_000, 2_000, 4_000, 30_000, 30_000]);
    expect(restartDelay(3, { firstMs: 100, maxMs: 250, stableMs: 1 })).toBe(250);
  });

  it('fails the start when a process exits before it is ready, naming it', async () => {
    failAtStart = 'worker-2';
    await expect(supervise().start()).rejects.toThrow(
      /^worker-2 \(pid \d+\) exited before it was ready \(code 3\); its log above says why$/,
    );
  });

  it('does not restart a process that refuses its configuration (exit 78): it reports it instead', async () => {
    const fatal: string[] = [];
    await supervise({ counts: { api: 1, worker: 1 }, onFatal: (reason) => fatal.push(reason) }).start();
    const pid = pidOf('api-1')!;
    // The clock is skipped, not waited for: a restart timer, had one been set, fires when told to.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'hrtime', 'performance'] });
    try {
      process.kill(pid, 'SIGUSR2');
      while (fatal.length === 0) await new Promise((resolve) => setImmediate(resolve));
      expect(fatal).toEqual(['api-1 refused its configuration (exit 78)']);
      jest.advanceTimersByTime(60_000); // past any restart delay (at most backoff.maxMs, 1 s)
    } finally {
      jest.useRealTimers();
    }
    expect(pidOf('api-1')).toBeUndefined();
    expect(logs.filter((l) => l.msg === 'process started' && l.process === 'api-1')).toHaveLength(1);
  });
});
