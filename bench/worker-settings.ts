/**
 * `npm run bench:worker-settings`: what each worker setting does to reservations/s and to memory
 * at 10,000 live holds, measured rather than guessed. For each variant (a set of WORKER_*
 * variables, src/config/index.ts), one `npm run bench -- reservations memory` on the benchmark's
 * own stack, the variant's variables given to the service's worker and to the references' workers
 * alike (they read the same settings: src/temporal/worker-settings.ts). Each run's figures are
 * read from its own results directory, and the table puts them side by side with the default's:
 * reservations/s and its ratio to the bare reference of the same run (the machine moves between
 * runs; the ratio to a floor measured minutes apart moves less), the same-shape ratio, and the
 * worker's RSS before and with the live holds.
 *
 *   npm run bench:worker-settings                       every variant (about 5 minutes each)
 *   BENCH_WORKER_VARIANTS=default,cache-10000 npm run bench:worker-settings
 *
 * Writes bench/results/worker-settings.json and prints a markdown table.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../src/paths';
import { readResults } from './harness/results';

const VARIANTS: Record<string, Record<string, string>> = {
  default: {},
  'cache-250': { WORKER_MAX_CACHED_WORKFLOWS: '250' },
  'cache-10000': { WORKER_MAX_CACHED_WORKFLOWS: '10000' },
  'wft-slots-10': { WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '10' },
  'wft-slots-200': { WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '200' },
  'local-activity-slots-50': { WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES: '50' },
  'threads-2': { WORKER_THREAD_POOL_SIZE: '2' },
  'no-reuse-v8-context': { WORKER_REUSE_V8_CONTEXT: 'false' },
};

interface Figures {
  variant: string;
  env: Record<string, string>;
  rps?: number;
  ratio?: number;
  sameShapeRatio?: number;
  workerCpuMsPerLifecycle?: number;
  workerRssBeforeMb?: number | null;
  workerRssMb?: number | null;
  liveHolds?: number;
  error?: string;
}

function main(): number {
  const wanted = (process.env.BENCH_WORKER_VARIANTS ?? Object.keys(VARIANTS).join(','))
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  const unknown = wanted.filter((v) => !(v in VARIANTS));
  if (unknown.length > 0) {
    console.error(`unknown variant(s) ${unknown.join(', ')}; known: ${Object.keys(VARIANTS).join(', ')}`);
    return 2;
  }
  const figures: Figures[] = [];
  for (const variant of wanted) {
    const env = VARIANTS[variant]!;
    const out = mkdtempSync(path.join(os.tmpdir(), `stockhold-worker-${variant}-`));
    console.log(`── ${variant} ${JSON.stringify(env)} ──`);
    const run = spawnSync(
      process.execPath,
      [path.join(PROJECT_ROOT, 'build', 'bench', 'run.js'), 'reservations', 'memory', '--no-experiments', '--out', out],
      { env: { ...process.env, ...env }, stdio: 'inherit' },
    );
    const scenarios = readResults(path.join(out, 'latest.json'))?.scenarios;
    const r = scenarios?.reservations;
    const m = scenarios?.memory;
    figures.push({
      variant,
      env,
      rps: r?.rps,
      ratio: r?.ratio,
      sameShapeRatio: r?.sameShapeRatio,
      workerCpuMsPerLifecycle: r?.cpuMsPerLifecycle?.service.worker,
      workerRssBeforeMb: m?.before.workerRssMb,
      workerRssMb: m?.workerRssMb,
      liveHolds: m?.liveHolds,
      ...(run.status !== 0 ? { error: `bench exited with ${run.status}` } : {}),
    });
    rmSync(out, { recursive: true, force: true });
  }
  const file = path.join(PROJECT_ROOT, 'bench', 'results', 'worker-settings.json');
  writeFileSync(file, `${JSON.stringify({ measuredAt: new Date().toISOString(), figures }, null, 2)}\n`);
  const base = figures.find((f) => f.variant === 'default');
  const n = (v: number | null | undefined, digits = 1) => (v === undefined || v === null ? '–' : v.toFixed(digits));
  console.log(
    '\n| variant | reservations/s | vs bare ref (same run) | vs same shape | worker CPU ms/lifecycle | worker RSS before / with holds, MB |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const f of figures) {
    const vsDefault = base?.ratio && f.ratio && f !== base ? ` (${(f.ratio / base.ratio).toFixed(2)}× default's)` : '';
    console.log(
      `| ${f.variant}${f.error ? ` (${f.error})` : ''} | ${n(f.rps)} | ${n(f.ratio, 2)}${vsDefault} | ${n(f.sameShapeRatio, 2)} | ${n(f.workerCpuMsPerLifecycle)} | ${n(f.workerRssBeforeMb, 0)} / ${n(f.workerRssMb, 0)} (${f.liveHolds ?? '–'} holds) |`,
    );
  }
  console.log(`\nfigures: ${path.relative(process.cwd(), file)}`);
  return figures.some((f) => f.error) ? 1 : 0;
}

process.exitCode = main();
