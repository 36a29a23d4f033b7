/**
 * Another revision of the service, built beside this one, so a benchmark can measure before and
 * after a change in one run (the machine's noise moves both alike): `git archive` of the
 * revision's src/, lua/, migrations/, public/ (if it has one: the ops page, /docs) and build config
 * into build/bench/rev-<rev>/, compiled with its own tsconfig. node_modules/ is found above it;
 * src/paths.ts takes the copy for the project root, so the copy reads its own Lua scripts and pages.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/paths';

/** Builds `rev` (once; reused while the commit is the same) and returns its lib/ folder. */
export function buildRevision(rev: string): { lib: string; commit: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', `${rev}^{commit}`], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
  }).trim();
  const dir = path.join(PROJECT_ROOT, 'build', 'bench', `rev-${commit}`);
  const lib = path.join(dir, 'lib');
  if (!existsSync(path.join(lib, 'worker.js'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const archive =
      'git archive "$1" src lua migrations package.json tsconfig.json tsconfig.build.json $(git cat-file -e "$1:public" 2>/dev/null && echo public)';
    execFileSync('sh', ['-c', `${archive} | tar -x -C "$2"`, 'sh', commit, dir], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    execFileSync(
      process.execPath,
      [
        path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        path.join(dir, 'tsconfig.build.json'),
      ],
      { cwd: dir, stdio: 'inherit' },
    );
  }
  return { lib, commit };
}
