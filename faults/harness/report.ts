/**
 * The run's report: a table on the terminal (one row per phase: what was broken and what it cost)
 * and the same figures, with every finding, as JSON for later comparison.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PhaseResult } from './phase';

export interface RssSeries {
  process: 'api' | 'worker';
  pid: number;
  samples: { t: number; mb: number }[];
}

export interface RunReport {
  mode: 'full' | 'kinds' | 'soak';
  startedAt: string;
  finishedAt: string;
  durationS: number;
  commit: string;
  dirty: boolean;
  healTimeoutS: number;
  phases: PhaseResult[];
  soak?: {
    durationS: number;
    warmupS: number;
    rss: RssSeries[];
    /** Growth of each process's RSS after warm-up, in percent (median of the last samples vs the first after warm-up). */
    growthPct: Record<string, number | null>;
    non503ServerErrors: number;
  };
  failures: string[];
  passed: boolean;
}

/** "2xx 1234 · 409 87 · 503 4": answers by status, 2xx summed, rarest last. */
export function statusSummary(answers: Record<string, number>): string {
  const groups = new Map<string, number>();
  for (const [status, n] of Object.entries(answers)) {
    const key = /^2\d\d$/.test(status) ? '2xx' : status;
    groups.set(key, (groups.get(key) ?? 0) + n);
  }
  return [...groups.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}:${n}`)
    .join(' ');
}

/** The phase's name, with its faults when it combines several. */
const phaseName = (p: PhaseResult) =>
  p.faults.length > 1 && p.name !== 'soak' ? `${p.name} (${p.faults.join(' + ')})` : p.name;

/**
 * One row per phase. `broken`: reservations a client heard HELD that lost their promise;
 * `contradicted`: other answers PostgreSQL contradicts; `unexplained`: drift the reconciler could
 * not explain (allowed only where Redis lost data); `hit`: every fault met what it is meant to break.
 */
export function table(phases: PhaseResult[]): string {
  const header = [
    'phase',
    'ops',
    'answers',
    'oversold',
    'lost',
    'doubled',
    'broken',
    'contradicted',
    'drift',
    'wedged',
    'unexplained',
    'crashes',
    'hit',
    'heal s',
    'max read ms',
    'max write ms',
    'result',
  ];
  const rows = phases.map((p) => [
    phaseName(p),
    String(p.operations),
    statusSummary(p.answers),
    String(p.oversoldUnits),
    String(p.lostSales.length + p.heardNotCommitted.length + p.temporalNotPg.length),
    String(p.doubledSales.length),
    String(p.brokenPromises.length),
    String(p.contradicted.length),
    String(p.driftUnits),
    String(p.wedged.length),
    String(Object.values(p.unexplained).reduce((a, b) => a + b, 0)),
    String(p.crashes.length),
    p.hit ? 'yes' : 'NO',
    p.healS === null ? `>${p.healTimeoutS}` : p.healS.toFixed(1),
    String(p.maxLatencyMs.read),
    String(p.maxLatencyMs.write),
    p.failures.length === 0 ? 'PASS' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) =>
        i === 0 || i === 2 || i === 12 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!),
      )
      .join('  ');
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

/** Per phase: what each fault hit, the reconciler's unexplained counts, and how many answers were judged. */
export function details(phases: PhaseResult[]): string {
  const lines: string[] = [];
  for (const p of phases) {
    const unexplained = Object.entries(p.unexplained).map(([k, n]) => `${k} ${n}`);
    const judged = Object.values(p.judged).reduce((a, b) => a + b, 0);
    lines.push(`  ${phaseName(p)}: ${p.hits.map((h) => `${h.fault}: ${h.what}`).join('; ') || 'no fault'}`);
    lines.push(
      `    ${judged} answers judged (${p.judged.HELD ?? 0} promises); unexplained ${unexplained.join(', ') || 'none'}${p.unexplainedAllowed ? ' (Redis lost data)' : ''}; ${p.unknownIds.found} reservations under ids no client was told (${p.unknownIds.lostAnswers} answers lost)`,
    );
  }
  return lines.join('\n');
}

export function failureList(phases: PhaseResult[]): string {
  const lines: string[] = [];
  for (const p of phases) for (const f of p.failures) lines.push(`  ${p.name}: ${f}`);
  return lines.length === 0 ? 'every invariant held after every fault' : `invariants broken:\n${lines.join('\n')}`;
}

export function writeJson(file: string, report: RunReport): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}
