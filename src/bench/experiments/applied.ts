/**
 * Which of the proposed changes (experiments/api-variant.ts) the service's own code already has,
 * so the benchmark does not run a "before/after" between two identical builds. Read from the
 * compiled API (lib/api/*.js): pino-http gone from the app, the admission gate in the reservation
 * service.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

function compiled(file: string): string {
  try {
    return readFileSync(path.resolve(__dirname, '..', '..', 'api', file), 'utf8');
  } catch {
    return '';
  }
}

export function alreadyApplied(): { lightLogging: boolean; admission: boolean } {
  return {
    lightLogging: !/require\(["']pino-http["']\)/.test(compiled('app.js')),
    admission: /admission/i.test(compiled('reservations.js')),
  };
}
