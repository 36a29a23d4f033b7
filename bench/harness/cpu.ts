/**
 * CPU time of processes (from /proc), to tell which process limits a measurement: CPU seconds
 * each used during a window, and how busy the whole machine was (other load included).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** utime + stime of a process (all its threads), in seconds; undefined when it cannot be read. */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (!pid || pid < 0) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return undefined;
  }
}

function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

export interface CpuUsage {
  /** CPU seconds per process name during the window. */
  seconds: Record<string, number>;
  /** Share of the machine's CPU time that was busy during the window (0..1, all processes). */
  machineBusy: number | null;
  wallSeconds: number;
}

/** Starts measuring the named processes; `stop()` returns what each used since. */
export function cpuMeter(pids: Record<string, number | undefined>): { stop(): CpuUsage } {
  const t0 = Date.now();
  const m0 = machineTicks();
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSecondsOf(pid)]));
  return {
    stop() {
      const m1 = machineTicks();
      const seconds: Record<string, number> = {};
      for (const [name, pid] of Object.entries(pids)) {
        const a = before[name];
        const b = cpuSecondsOf(pid);
        if (a !== undefined && b !== undefined) seconds[name] = Math.round((b - a) * 100) / 100;
      }
      const machineBusy =
        m0 && m1 && m1.total > m0.total
          ? Math.round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 1000) / 1000
          : null;
      return { seconds, machineBusy, wallSeconds: (Date.now() - t0) / 1000 };
    },
  };
}

/**
 * Waits until the named processes are quiet (together under `maxCores` of CPU for two
 * consecutive seconds), e.g. until the Temporal server has drained the workflows a storm left
 * behind, so one measurement does not pay for the previous one. Gives up after `timeoutMs`.
 * Returns how long it waited, in seconds.
 */
export async function waitUntilQuiet(
  pids: (number | undefined)[],
  opts: { maxCores?: number; timeoutMs?: number } = {},
): Promise<number> {
  const known = pids.filter((p): p is number => typeof p === 'number' && p > 0);
  const started = Date.now();
  if (known.length === 0) {
    await new Promise((r) => setTimeout(r, 3_000));
    return 3;
  }
  const maxCores = opts.maxCores ?? 0.15;
  const until = started + (opts.timeoutMs ?? 90_000);
  const total = () => known.reduce((a, p) => a + (cpuSecondsOf(p) ?? 0), 0);
  let quiet = 0;
  let last = total();
  while (quiet < 2 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 1_000));
    const now = total();
    quiet = now - last < maxCores ? quiet + 1 : 0;
    last = now;
  }
  return (Date.now() - started) / 1000;
}
