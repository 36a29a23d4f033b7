/** Progress lines of the benchmark: `[  12.3s] text`, flushed as they happen. */
import { performance } from 'node:perf_hooks';

const started = performance.now();

export function elapsedSeconds(): number {
  return (performance.now() - started) / 1000;
}

export function progress(text: string): void {
  console.log(`[${elapsedSeconds().toFixed(1).padStart(6)}s] ${text}`);
}

/** A sub-step line, indented under the current step. */
export function detail(text: string): void {
  progress(`    ${text}`);
}
