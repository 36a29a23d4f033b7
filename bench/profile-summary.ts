/**
 * Summarises V8 CPU profiles (node --cpu-prof, e.g. from `npm run bench -- --profile`): where the
 * process spent its time, by package / file and by function (self time), and the inclusive time of
 * chosen frames (a middleware, a handler).
 *
 *   npm run build:tools && node build/bench/profile-summary.js bench/results/api.cpuprofile [--top 25] [--focus name,name]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The package (node_modules/<pkg>), `node:internal`, or the project file a frame belongs to. */
function ownerOf(url: string): string {
  if (!url) return '(native / VM)';
  if (url.startsWith('node:')) return 'node:internal';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const lib = url.indexOf('/lib/');
  return lib >= 0 ? `project ${url.slice(lib + 1)}` : url.replace(/^file:\/\//, '');
}

export function summarizeProfile(file: string, top = 25, focus: string[] = []): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs.entries()].filter(([id]) =>
    ['(idle)', '(program)', '(garbage collector)'].includes(byId.get(id)!.callFrame.functionName),
  );
  const named = (name: string) =>
    idle.filter(([id]) => byId.get(id)!.callFrame.functionName === name).reduce((a, [, us]) => a + us, 0);
  const idleUs = named('(idle)');
  const busy = total - idleUs;

  const byOwner = new Map<string, number>();
  const byFn = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    const owner = f.functionName.startsWith('(') ? f.functionName : ownerOf(f.url);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
    const key = `${f.functionName || '(anonymous)'}  ${f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : ''}  [${owner}]`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  // Inclusive time of focused frames: a sample counts once per focused name on its stack.
  const inclusive = new Map<string, number>(focus.map((f) => [f, 0]));
  if (focus.length > 0) {
    for (const [id, us] of selfUs) {
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const f = byId.get(cur)!.callFrame;
        for (const name of focus)
          if (!seen.has(name) && (f.functionName === name || `${ownerOf(f.url)}` === name)) seen.add(name);
      }
      for (const name of seen) inclusive.set(name, inclusive.get(name)! + us);
    }
  }
  const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)}%`;
  const lines: string[] = [];
  lines.push(
    `${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${((busy / total) * 100).toFixed(0)}%); GC ${pct(named('(garbage collector)'))} of busy`,
  );
  lines.push('', 'self time by owner (share of busy time):');
  for (const [owner, us] of [...byOwner.entries()].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${pct(us)}  ${owner}`);
  lines.push('', 'self time by function:');
  for (const [fn, us] of [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${pct(us)}  ${fn}`);
  if (focus.length > 0) {
    lines.push('', 'inclusive time of:');
    for (const [name, us] of inclusive) lines.push(`  ${pct(us)}  ${name}`);
  }
  return lines.join('\n');
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const focusAt = args.indexOf('--focus');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const focus = focusAt >= 0 ? args[focusAt + 1]!.split(',') : [];
  const valueAt = new Set([topAt, focusAt].filter((i) => i >= 0).map((i) => i + 1));
  const files = args.filter((a, i) => !a.startsWith('--') && !valueAt.has(i));
  if (files.length === 0) {
    console.error('usage: node build/bench/profile-summary.js FILE.cpuprofile [--top N] [--focus fn,pkg]');
    process.exit(2);
  }
  for (const f of files) console.log(`${summarizeProfile(f, top, focus)}\n`);
}
