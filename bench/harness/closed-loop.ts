import { performance } from 'node:perf_hooks';

/**
 * A closed loop: `callers` callers each run `op` again and again, one at a time, until `ms` have
 * passed; the seconds it took in all (the last calls finish after the deadline). The caller counts
 * what it needs inside `op`.
 */
export async function closedLoop(callers: number, ms: number, op: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  const deadline = start + ms;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < deadline) await op();
    }),
  );
  return (performance.now() - start) / 1000;
}
