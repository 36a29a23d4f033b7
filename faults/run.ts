/**
 * `npm run faults`: runs the real service (API and worker processes) against stores the harness
 * owns and breaks them, one fault kind at a time and then combined at random, under a mixed
 * workload; after each fault it waits for the service to heal and checks the invariants from
 * PostgreSQL, Redis and Temporal directly. Prints a table, writes faults/results/latest.json, and
 * exits non-zero when an invariant failed.
 *
 *   npm run faults                      every kind (~40 s of traffic each), then 3 random combinations
 *   npm run faults -- redis-wipe pg-crash     some kinds only (a kind given twice runs twice)
 *   npm run faults -- redis-freeze+temporal-kill   one combination (faults on distinct targets)
 *   npm run faults -- --soak 30m        steady traffic with a fault every few minutes, RSS over time
 *   npm run faults -- --help
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../src/paths';
import {
  FAULTS,
  FULL_TIMING,
  faultNamed,
  randomCombination,
  type FaultHit,
  type FaultKind,
  type Timing,
} from './harness/faults';
import {
  closePhase,
  finalSweep,
  gatherEvidence,
  healthy,
  judge,
  logOffsets,
  probeHealth,
  RunState,
  runPhase,
  until,
  type PhaseResult,
} from './harness/phase';
import { installExitHandlers, sleep, stopEverything } from './harness/procs';
import { details, failureList, table, writeJson, type RssSeries, type RunReport } from './harness/report';
import { rssOf } from './harness/service';
import { startStack, type Stack } from './harness/stack';
import { reconcilerCounts } from './harness/checks';

const HELP = `Usage: npm run faults -- [kind ...] [options]

Kinds (default: all, then ${3} random combinations): ${FAULTS.map((f) => f.name).join(', ')};
a+b (e.g. redis-freeze+temporal-kill) runs those faults as one combined phase
${FAULTS.map((f) => `  ${f.name.padEnd(14)} ${f.what}`).join('\n')}

Options:
  --combined N        random combinations after the single kinds (default 3; 0 with kinds given)
  --soak DURATION     steady traffic for DURATION (e.g. 30m, 90s) with a fault every --every
  --every DURATION    pause between soak faults (default 4m)
  --heal-timeout S    seconds to wait for the service to heal after a fault (default 90)
  --rev REV           run the service of this git revision (compiled afresh) instead of lib/
  --out FILE          the JSON report (default faults/results/latest.json; soak: faults/results/soak.json)
`;

function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text} (e.g. 30m, 90s)`);
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

interface Args {
  kinds: FaultKind[];
  /** Combinations named on the command line (`redis-freeze+temporal-kill`), run after the kinds. */
  combos: FaultKind[][];
  combined: number;
  soakMs?: number;
  everyMs: number;
  healTimeoutMs: number;
  out?: string;
  rev?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { kinds: [], combos: [], combined: -1, everyMs: 4 * 60_000, healTimeoutMs: 90_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      console.log(HELP);
      process.exit(0);
    } else if (a === '--combined') args.combined = Number(value());
    else if (a === '--soak') args.soakMs = duration(value());
    else if (a === '--every') args.everyMs = duration(value());
    else if (a === '--heal-timeout') args.healTimeoutMs = Number(value()) * 1000;
    else if (a === '--out') args.out = path.resolve(value());
    else if (a === '--rev') args.rev = value();
    else {
      const kinds = a.split('+').map((name) => {
        const kind = faultNamed(name);
        if (!kind) throw new Error(`unknown fault kind ${name}: one of ${FAULTS.map((f) => f.name).join(', ')}`);
        return kind;
      });
      if (kinds.length === 1) args.kinds.push(kinds[0]!);
      else if (new Set(kinds.map((k) => k.target)).size < kinds.length)
        throw new Error(`${a}: a combination puts each fault on a target of its own`);
      else args.combos.push(kinds);
    }
  }
  const named = args.kinds.length + args.combos.length > 0;
  if (args.combined < 0) args.combined = named ? 0 : 3;
  if (!named && args.soakMs === undefined) args.kinds = [...FAULTS];
  return args;
}

const t0 = Date.now();
const log = (msg: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${msg}`);

function gitState(rev?: string): { commit: string; dirty: boolean } {
  try {
    // The last commit that changed the service (src/, lua/, migrations/), not the harness's own.
    const commit = execFileSync('git', ['log', '-1', '--format=%h', rev ?? 'HEAD', '--', 'src', 'lua', 'migrations'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    }).trim();
    if (rev) return { commit, dirty: false };
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src', 'lua', 'migrations'], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
      }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

async function faultRun(stack: Stack, args: Args): Promise<PhaseResult[]> {
  const state = new RunState();
  const phases: PhaseResult[] = [];
  const runs = new Map<string, number>();
  for (const kind of args.kinds) {
    // A kind given twice runs twice, as "pg-crash", "pg-crash#2", … (phase names key the figures).
    const n = (runs.get(kind.name) ?? 0) + 1;
    runs.set(kind.name, n);
    const name = n === 1 ? kind.name : `${kind.name}#${n}`;
    phases.push(await runPhase(stack, state, name, [kind], FULL_TIMING, { healTimeoutMs: args.healTimeoutMs, log }));
  }
  const tried = new Set<string>();
  for (let i = 1; i <= args.combos.length + args.combined; i++) {
    // A combination named on the command line, or one not run yet in this run (kinds sorted, so
    // the order of picking does not count).
    let kinds = args.combos[i - 1] ?? randomCombination();
    for (
      let n = 0;
      n < 50 &&
      i > args.combos.length &&
      tried.has(
        kinds
          .map((k) => k.name)
          .sort()
          .join('+'),
      );
      n++
    )
      kinds = randomCombination();
    tried.add(
      kinds
        .map((k) => k.name)
        .sort()
        .join('+'),
    );
    const name = `combined-${i}`;
    log(`${name}: ${kinds.map((k) => k.name).join(' + ')}`);
    const timing: Timing = { ...FULL_TIMING, beforeMs: 8_000, afterMs: 10_000 };
    phases.push(
      await runPhase(stack, state, name, kinds, timing, { healTimeoutMs: args.healTimeoutMs, staggerMs: 8_000, log }),
    );
  }
  const late = await finalSweep(stack, state, args.healTimeoutMs, log);
  for (const [phase, found] of late) {
    const p = phases.find((x) => x.name === phase);
    if (!p) continue;
    p.wedged.push(...found);
    p.failures = judge(p);
    p.evidence = await gatherEvidence(stack, p);
  }
  return phases;
}

/** Steady traffic with a fault every `everyMs`, RSS sampled every 15 s; the invariants at the end. */
async function soakRun(
  stack: Stack,
  args: Args,
): Promise<{ phases: PhaseResult[]; soak: NonNullable<RunReport['soak']> }> {
  const soakMs = args.soakMs!;
  // Faults that keep the API's and the worker's pids, so each RSS series is one process's life.
  const kinds = FAULTS.filter((f) => f.target !== 'api' && f.target !== 'worker');
  const name = 'soak';
  const state = new RunState();
  stack.recorder.phase = name;
  const skus = await stack.workload.createSkus(name, `soak-${Date.now().toString(36).slice(-4)}`);
  const countsBefore = await reconcilerCounts(stack.pg.pool).catch(() => undefined);
  const offsets = logOffsets(stack);
  stack.workload.start(skus);
  const start = Date.now();
  const warmupMs = Math.min(5 * 60_000, soakMs * 0.2);
  const series = new Map<number, RssSeries>();
  const sampleRss = async () => {
    const procs = [stack.service.api, stack.service.worker];
    const pids = procs.map((p) => p.proc?.pid ?? -1).filter((p) => p > 0);
    const rss = await rssOf(pids);
    for (const p of procs) {
      const pid = p.proc?.pid ?? -1;
      const mb = rss.get(pid);
      if (mb === undefined) continue;
      let s = series.get(pid);
      if (!s) series.set(pid, (s = { process: p.name, pid, samples: [] }));
      s.samples.push({ t: Math.round((Date.now() - start) / 1000), mb: Math.round(mb) });
    }
  };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sampleRss();
      await sleep(15_000);
    }
  })();
  const lines: string[] = [];
  const slog = (msg: string) => {
    lines.push(msg);
    log(`[soak +${((Date.now() - start) / 60_000).toFixed(1)}m] ${msg}`);
  };
  let next = start + Math.min(args.everyMs, soakMs / 3);
  let n = 0;
  const hits: FaultHit[] = [];
  const injected: FaultKind[] = [];
  const extraFailures: string[] = [];
  while (Date.now() - start < soakMs) {
    if (Date.now() >= next && Date.now() - start < soakMs - 60_000) {
      const kind = kinds[n++ % kinds.length]!;
      slog(`fault ${n}: ${kind.name}`);
      injected.push(kind);
      try {
        const hit = await kind.inject({ stack, timing: FULL_TIMING, skus, log: slog });
        hits.push({ ...hit, fault: `${hit.fault} (${n})` });
        slog(`${hit.fault} ${hit.hit ? 'hit' : 'HIT NOTHING'}: ${hit.what}`);
      } catch (err) {
        extraFailures.push(`fault ${n} (${kind.name}) could not be injected or undone: ${String(err)}`);
        hits.push({ fault: `${kind.name} (${n})`, hit: false, what: 'not injected' });
      }
      next = Date.now() + args.everyMs;
    }
    await sleep(1_000);
  }
  sampling = false;
  await sampler;
  await stack.workload.stop();
  slog('traffic stopped; waiting for the service to heal');
  const end = Date.now();
  const heal = await until(args.healTimeoutMs, () => probeHealth(stack, state), healthy);
  const last = heal.value ?? (await probeHealth(stack, state).catch(() => undefined));
  if (!last) extraFailures.push('the heal check could not read the stores');
  const phase = await closePhase(stack, state, {
    name,
    // Every kind injected (its losesRedisData allows unexplained drift), each once in the list of faults.
    kinds: [...new Set(injected)],
    t0: start,
    faultStart: start,
    faultEnd: start,
    trafficEnd: end,
    healS: heal.at === null ? null : Math.round((heal.at - end) / 100) / 10,
    healTimeoutMs: args.healTimeoutMs,
    last,
    hits,
    extraFailures,
    countsBefore,
    logOffsets: offsets,
    lines,
    log: slog,
  });
  // A soak's hits are per fault injected, not per kind.
  phase.hit = hits.every((h) => h.hit);
  phase.faultS = 0;
  const non503 = Object.entries(phase.http.byStatus)
    .filter(([k]) => /^5\d\d$/.test(k) && k !== '503')
    .reduce((sum, [, count]) => sum + count, 0);
  const growthPct: Record<string, number | null> = {};
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const s of series.values()) {
    const after = s.samples.filter((x) => x.t * 1000 >= warmupMs);
    const key = `${s.process} (pid ${s.pid})`;
    if (after.length < 6) {
      growthPct[key] = null;
      continue;
    }
    const base = median(after.slice(0, 3).map((x) => x.mb));
    const lastMb = median(after.slice(-3).map((x) => x.mb));
    growthPct[key] = Math.round(((lastMb - base) / base) * 1000) / 10;
    if (growthPct[key]! >= 10)
      phase.extraFailures.push(`${key} RSS grew ${growthPct[key]}% after warm-up (${base} → ${lastMb} MB)`);
  }
  if (non503 > 0) phase.extraFailures.push(`${non503} 5xx answers other than 503`);
  phase.failures = judge(phase);
  return {
    phases: [phase],
    soak: {
      durationS: Math.round(soakMs / 1000),
      warmupS: Math.round(warmupMs / 1000),
      rss: [...series.values()],
      growthPct,
      non503ServerErrors: non503,
    },
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  installExitHandlers(log);
  const out = args.out ?? path.join(PROJECT_ROOT, 'faults', 'results', args.soakMs ? 'soak.json' : 'latest.json');
  const logDir = path.join(PROJECT_ROOT, 'faults', 'results', 'logs');
  const { rmSync } = await import('node:fs');
  rmSync(logDir, { recursive: true, force: true });
  const git = gitState(args.rev);
  log(
    `fault harness: ${args.soakMs ? `soak for ${args.soakMs / 60_000} min` : `${[...args.kinds.map((k) => k.name), ...args.combos.map((c) => c.map((k) => k.name).join('+'))].join(', ')}${args.combined ? ` + ${args.combined} combined` : ''}`}; heal timeout ${args.healTimeoutMs / 1000} s; service at ${git.commit}${git.dirty ? ' (+ uncommitted changes in src/)' : ''}`,
  );
  const startedAt = new Date().toISOString();
  let report: RunReport | undefined;
  try {
    const stack = await startStack({ logDir, log, rev: args.rev });
    const { phases, soak } = args.soakMs
      ? await soakRun(stack, args)
      : { phases: await faultRun(stack, args), soak: undefined };
    const failures = phases.flatMap((p) => p.failures.map((f) => `${p.name}: ${f}`));
    report = {
      mode: args.soakMs ? 'soak' : args.kinds.length === FAULTS.length ? 'full' : 'kinds',
      startedAt,
      finishedAt: new Date().toISOString(),
      durationS: Math.round((Date.now() - t0) / 1000),
      ...git,
      healTimeoutS: args.healTimeoutMs / 1000,
      phases,
      ...(soak ? { soak } : {}),
      failures,
      passed: failures.length === 0,
    };
  } finally {
    log('stopping everything the harness started…');
    await stopEverything();
  }
  writeJson(out, report);
  console.log(`\n${table(report.phases)}\n\n${details(report.phases)}\n`);
  if (report.soak) {
    console.log(
      `RSS growth after ${report.soak.warmupS} s warm-up: ${Object.entries(report.soak.growthPct)
        .map(([k, v]) => `${k} ${v === null ? 'n/a' : `${v}%`}`)
        .join(', ')}`,
    );
    console.log(`5xx other than 503: ${report.soak.non503ServerErrors}`);
  }
  console.log(failureList(report.phases));
  console.log(
    `\n${report.durationS} s in all; report: ${path.relative(process.cwd(), out)}; logs: ${path.relative(process.cwd(), logDir)}`,
  );
  return report.passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    log(`fault harness failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await stopEverything();
    process.exit(2);
  },
);
