/** For tests that run the service's own processes from lib/: building it when stale, and asking whether a process lives. */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/temporal';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * Compiles src/ into lib/ when `file` (e.g. lib/worker.js) is missing or older than any file of
 * src/ (`npm test` builds first, so this matters when one test file runs alone). tsc still emits
 * JavaScript for files with type errors; a type error elsewhere in src/ (which `npm test`'s
 * typecheck reports anyway) must not stop the test from running what was emitted.
 */
export function buildIfStale(file: string): void {
  if (existsSync(file) && statSync(file).mtimeMs >= newestMtime(path.join(PROJECT_ROOT, 'src'))) return;
  const startedAt = Date.now();
  try {
    execFileSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: PROJECT_ROOT, stdio: 'pipe', timeout: 180_000 });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    const report = `${String(e.stdout ?? '')}${String(e.stderr ?? '')}`;
    if (!existsSync(file) || statSync(file).mtimeMs < startedAt - 1_000) throw new Error(`build failed:\n${report}`);
    console.warn(`build reported type errors; running the emitted ${path.relative(PROJECT_ROOT, file)} anyway:\n${report}`);
  }
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
