/**
 * Reading the environment for the configuration: numbers in a range, booleans, files read at
 * start; each refusal a ConfigError naming the variable (the service then exits with EX_CONFIG).
 */
import { readFileSync } from 'node:fs';

/** A configuration the service refuses to start with; its message names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A boolean variable (`true`/`false`, also 1/0, yes/no); unset is undefined. */
export function booleanOf(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return undefined;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

/** The file a variable names, read now: an unreadable one refuses the start, naming the variable. */
export function fileOf(name: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : String((err as Error).message);
    throw new ConfigError(`${name} names a file that cannot be read: ${file} (${why})`);
  }
}
