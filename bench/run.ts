/**
 * `npm run bench`: Stockhold's benchmark suite. Starts its own isolated stack (or uses a running
 * one with --url), runs the scenarios with load from separate processes on loopback, prints a
 * table with every figure next to its reference and goal, and writes bench/results/latest.json,
 * bench/results/REPORT.md and the SVG charts.
 *
 *   npm run bench                               all scenarios on the benchmark's own stack
 *   npm run bench -- availability memory        some scenarios (the others keep their last results)
 *   npm run bench -- --url http://127.0.0.1:3000 --admin-token A --client-token C
 *   npm run bench -- --help
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../src/paths';
import { progress } from './harness/progress';
import { buildRevision } from './harness/revision';
import { waitUntilQuiet } from './harness/cpu';
import { killAllNow, startChildService, stopAll } from './harness/procs';
import { allRows, writeReport } from './harness/report';
import { readResults, type Experiment, type Results, type StackInfo } from './harness/results';
import { assertLoopback, startOwnStack, useRunningStack, type Target } from './harness/stack';
import { textTable } from './harness/table';
import { availability } from './scenarios/availability';
import { flashSale } from './scenarios/flash-sale';
import { holds } from './scenarios/holds';
import { memory } from './scenarios/memory';
import { reservations } from './scenarios/reservations';
import { strategies } from './scenarios/strategies';
import type { Context, Outcome, Row } from './scenarios/types';

const SCENARIOS = {
  availability: { key: 'availability', run: availability, needsService: true },
  'flash-sale': { key: 'flashSale', run: flashSale, needsService: true },
  reservations: { key: 'reservations', run: reservations, needsService: true },
  strategies: { key: 'strategies', run: strategies, needsService: false },
  holds: { key: 'holds', run: holds, needsService: false },
  memory: { key: 'memory', run: memory, needsService: true },
} as const;
type ScenarioName = keyof typeof SCENARIOS;
const ALIASES: Record<string, ScenarioName> = {
  flash: 'flash-sale',
  flashsale: 'flash-sale',
  flashSale: 'flash-sale',
  strategy: 'strategies',
  reservation: 'reservations',
  mem: 'memory',
  hold: 'holds',
  cluster: 'flash-sale',
};

const HELP = `Usage: npm run bench -- [scenario ...] [options]

Scenarios (default: all, in this order): ${Object.keys(SCENARIOS).join(', ')}

Options:
  --url URL             use a running API (loopback only) instead of starting a stack
  --admin-token T       its admin token (default: $INVENTORY_ADMIN_TOKEN or dev-admin-token)
  --client-token T      its client token (default: $INVENTORY_API_TOKEN or dev-api-token)
  --temporal ADDR       its Temporal frontend, for the reference workflow (default: $TEMPORAL_ADDRESS or 127.0.0.1:7233)
  --namespace NS        (default: $TEMPORAL_NAMESPACE or default)
  --redis-url URL       its Redis, for used_memory (default: $REDIS_URL or redis://127.0.0.1:6379)
  --api-pid N, --worker-pid N   its processes, for RSS (otherwise reported as n/a)
  --log-level LEVEL     API log level of the own stack (default: info, the service's default)
  --profile             CPU-profile the own stack's API (api.cpuprofile) and worker (worker/, a file per thread)
  --no-experiments      skip the before/after runs of proposed changes (own stack only)
  --baseline REV        also measure git revision REV (built beside lib/) where a scenario can,
                        side by side with this build in the same run (flash-sale: its storms;
                        an experiment "this build vs REV")
  --quick               shorter measurements (a smoke run; figures are noisier)
  --out DIR             results directory (default: bench/results)
  --report-only         only re-render REPORT.md and the charts from latest.json
`;

interface Options {
  scenarios: ScenarioName[];
  url?: string;
  adminToken: string;
  clientToken: string;
  temporal: string;
  namespace: string;
  redisUrl: string;
  apiPid?: number;
  workerPid?: number;
  logLevel: string;
  profile: boolean;
  quick: boolean;
  experiments: boolean;
  baseline?: string;
  reportOnly: boolean;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const env = process.env;
  const o: Options = {
    scenarios: [],
    adminToken: env.INVENTORY_ADMIN_TOKEN || 'dev-admin-token',
    clientToken: env.INVENTORY_API_TOKEN || 'dev-api-token',
    temporal: env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    logLevel: 'info',
    profile: false,
    quick: false,
    experiments: true,
    reportOnly: false,
    out: path.join(PROJECT_ROOT, 'bench', 'results'),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = () => {
      const v = Number(value());
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${flag} needs a positive integer`);
      return v;
    };
    switch (flag) {
      case '--help':
      case '-h':
        console.log(HELP);
        process.exit(0);
        break;
      case '--url':
        o.url = value();
        break;
      case '--admin-token':
        o.adminToken = value();
        break;
      case '--client-token':
        o.clientToken = value();
        break;
      case '--temporal':
        o.temporal = value();
        break;
      case '--namespace':
        o.namespace = value();
        break;
      case '--redis-url':
        o.redisUrl = value();
        break;
      case '--api-pid':
        o.apiPid = int();
        break;
      case '--worker-pid':
        o.workerPid = int();
        break;
      case '--log-level':
        o.logLevel = value();
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--quick':
        o.quick = true;
        break;
      case '--report-only':
        o.reportOnly = true;
        break;
      case '--baseline':
        o.baseline = value();
        break;
      case '--no-experiments':
        o.experiments = false;
        break;
      case '--out':
        o.out = path.resolve(value());
        break;
      default: {
        if (flag.startsWith('-')) throw new Error(`unknown option ${flag}\n\n${HELP}`);
        if (flag === 'all') {
          o.scenarios.push(...(Object.keys(SCENARIOS) as ScenarioName[]));
          break;
        }
        const name = (flag in SCENARIOS ? flag : ALIASES[flag]) as ScenarioName | undefined;
        if (!name) throw new Error(`unknown scenario ${flag} (one of ${Object.keys(SCENARIOS).join(', ')})\n\n${HELP}`);
        o.scenarios.push(name);
      }
    }
  }
  if (o.scenarios.length === 0) o.scenarios = Object.keys(SCENARIOS) as ScenarioName[];
  // Run in the canonical order, each once.
  o.scenarios = (Object.keys(SCENARIOS) as ScenarioName[]).filter((s) => o.scenarios.includes(s));
  if (o.url) {
    assertLoopback(o.url, '--url');
    if (o.profile) throw new Error('--profile needs the benchmark’s own stack (it starts the processes it profiles)');
  }
  return o;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const run = randomBytes(4).toString('hex');
  mkdirSync(opts.out, { recursive: true });
  if (opts.reportOnly) {
    const results = readResults(path.join(opts.out, 'latest.json'));
    if (!results) throw new Error(`no ${path.join(opts.out, 'latest.json')} to render`);
    writeReport(results, opts.out, path.join(PROJECT_ROOT, 'bench', 'FINDINGS.md'));
    console.log(
      `${textTable(allRows(results))}\n\nreport: ${path.relative(process.cwd(), path.join(opts.out, 'REPORT.md'))}`,
    );
    return 0;
  }
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const cpus = os.cpus();
  progress(
    `Stockhold benchmark ${run}: ${opts.scenarios.join(', ')}; node ${process.version}, ${cpus.length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}`,
  );

  let target: Target | undefined;
  let reference: { info: { port: number }; pid: number; stop(): Promise<void> } | undefined;
  let stopping = false;
  let keepLogs = false;
  const cleanup = async () => {
    await reference?.stop().catch(() => undefined);
    const kept = await target?.close(keepLogs).catch(() => undefined);
    if (kept) progress(`the stack's logs are kept in ${kept}`);
    await stopAll(5_000);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) {
        killAllNow();
        process.exit(130);
      }
      stopping = true;
      progress(`${signal}: stopping everything the benchmark started…`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  process.on('exit', killAllNow);

  const needsService = opts.scenarios.some((s) => SCENARIOS[s].needsService);
  const stackInfo = (): StackInfo => ({
    own: target?.own ?? true,
    url: target?.url ?? '',
    logLevel: target?.logLevel,
    profiled: opts.profile || undefined,
  });
  const outcomes: { name: ScenarioName; outcome?: Outcome<unknown>; error?: string }[] = [];
  const experiments: Record<string, Experiment[]> = {};
  try {
    if (opts.url) {
      progress(`using the running stack at ${opts.url} (Temporal ${opts.temporal})`);
      target = await useRunningStack({
        url: opts.url,
        adminToken: opts.adminToken,
        clientToken: opts.clientToken,
        temporalAddress: opts.temporal,
        namespace: opts.namespace,
        taskQueue: process.env.TEMPORAL_TASK_QUEUE || 'inventory-reservations',
        redisUrl: opts.redisUrl,
        apiPid: opts.apiPid,
        workerPid: opts.workerPid,
      });
    } else if (needsService) {
      progress('starting the benchmark’s own stack');
      target = await startOwnStack({ logLevel: opts.logLevel, profileDir: opts.profile ? opts.out : undefined });
      progress(
        `stack ready: API ${target.url} (pid ${target.apiPid}), worker pid ${target.workerPid}, Temporal ${target.temporalAddress}`,
      );
    } else {
      target = await startStoresOnly();
    }

    const ctx: Context = {
      target,
      run,
      experiments: opts.experiments && target.own && target.startApi !== undefined,
      baseline: opts.baseline ? { rev: opts.baseline, ...buildRevision(opts.baseline) } : undefined,
      settle: async (label) => {
        const t = target!;
        const waited = await waitUntilQuiet([t.temporalPid, t.workerPid, t.apiPid]);
        if (waited > 3) progress(`    waited ${waited.toFixed(0)} s for the stack to be quiet before ${label}`);
      },
      experiment: (group, e) => {
        const list = (experiments[group] ??= []);
        list.push({ ...e, measuredAt: new Date().toISOString() });
        progress(`    experiment: ${e.change}: ${e.measure} ${e.before} → ${e.after} ${e.unit}`);
      },
      seconds: (n) => (opts.quick ? Math.max(1, Math.round(n / 3)) : n),
      quick: opts.quick,
      referenceServer: async () => {
        reference ??= await startChildService<{ port: number }>('reference-server', {
          keepAliveTimeoutMs: 65_000,
          redisUrl: target!.redisUrl,
        });
        return `http://127.0.0.1:${reference.info.port}`;
      },
      referenceServerPid: () => reference?.pid,
    };
    for (const name of opts.scenarios) {
      if (stopping) break;
      progress(`── ${name} ──`);
      try {
        if (SCENARIOS[name].needsService) await ctx.settle(name);
        const outcome = await SCENARIOS[name].run(ctx);
        if (outcome.failure) keepLogs = true;
        outcomes.push({ name, outcome });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        progress(`!!!!! ${name} failed: ${message}`);
        keepLogs = true;
        outcomes.push({ name, error: message });
      }
    }
  } finally {
    if (!stopping) {
      progress('stopping the processes the benchmark started');
      await cleanup();
    }
  }

  // ------------------------------------------------------------------ results, table, report
  const file = path.join(opts.out, 'latest.json');
  const previous = readResults(file);
  const results: Results = {
    generatedAt: new Date().toISOString(),
    command,
    machine: {
      cpus: cpus.length,
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      cpuModel: cpus[0]?.model ?? 'unknown',
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      loadAverageAtStart: os.loadavg(),
    },
    scenarios: { ...(previous?.scenarios ?? {}) },
    // A group measured in this run replaces the same group of an earlier run.
    experiments: { ...(previous?.experiments ?? {}), ...experiments },
  };
  const measuredAt = new Date().toISOString();
  for (const { name, outcome } of outcomes) {
    if (!outcome) continue;
    const key = SCENARIOS[name].key;
    (results.scenarios as Record<string, unknown>)[key] = {
      ...(outcome.data as object),
      measuredAt,
      runId: run,
      stack: stackInfo(),
      ...(outcome.failure ? { failure: outcome.failure } : {}),
    };
  }
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  writeReport(results, opts.out, path.join(PROJECT_ROOT, 'bench', 'FINDINGS.md'));

  const rows: Row[] = outcomes.flatMap(
    (o) =>
      o.outcome?.rows ?? [
        { scenario: o.name, measure: 'did not finish', value: 'ERROR', note: o.error?.split('\n')[0] },
      ],
  );
  console.log(`\n${textTable(rows)}\n`);
  const tried = Object.values(experiments).flat();
  if (tried.length > 0) {
    console.log('proposed changes, measured beside the service in this run (before → after):');
    for (const e of tried) console.log(`  ${e.change}: ${e.measure}: ${e.before} → ${e.after} ${e.unit}`);
    console.log('');
  }
  const failures = outcomes.flatMap((o) =>
    o.error ? [`${o.name}: ${o.error.split('\n')[0]}`] : o.outcome?.failure ? [o.outcome.failure] : [],
  );
  const missed = rows.filter((r) => r.met === false).length;
  const older = allRows(results).length - rows.length;
  console.log(
    `results: ${path.relative(process.cwd(), file)}, report: ${path.relative(process.cwd(), path.join(opts.out, 'REPORT.md'))}${older > 0 ? ` (with ${older} lines from earlier runs of other scenarios)` : ''}`,
  );
  console.log(`goals: ${rows.filter((r) => r.met === true).length} met, ${missed} missed`);
  if (failures.length > 0) {
    console.log(`\nFAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    return 1;
  }
  return 0;
}

/** Only the benchmark's own stores (the strategies scenario needs no service). */
async function startStoresOnly(): Promise<Target> {
  const { BENCH_DATABASE_URL, BENCH_REDIS_URL } = await import('./harness/stack');
  const { migrate } = await import('../src/stock/database');
  await migrate(BENCH_DATABASE_URL);
  return {
    own: true,
    url: '',
    adminToken: '',
    clientToken: '',
    temporalAddress: '',
    namespace: 'default',
    taskQueue: '',
    redisUrl: BENCH_REDIS_URL,
    benchRedisUrl: BENCH_REDIS_URL,
    benchDatabaseUrl: BENCH_DATABASE_URL,
    async close() {
      return undefined;
    },
  };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('benchmark failed:', err instanceof Error ? err.message : err);
    killAllNow();
    process.exit(1);
  },
);
