/**
 * Guards for the processes and databases the tests create, so none outlives the test process,
 * however it ends: a normal teardown stops them itself, but a Ctrl-C, a SIGKILL or a crash skips
 * jest's globalTeardown and every afterAll.
 *
 * A guard is a small process of its own session (`detached`: the Ctrl-C sent to the terminal's
 * process group does not reach it) that polls the test process once a second; when the test
 * process is gone, it kills the guarded process or drops the guarded database, then exits. It
 * also exits by itself once the guarded process has exited. Stopping the guarded thing normally
 * cancels its guard.
 */
import { spawn } from 'node:child_process';

export interface Guard {
  /** Ends the guard (without touching what it guards): call it once the guarded thing is cleaned up. */
  cancel(): void;
}

function detachedGuard(command: string, args: string[]): Guard {
  const guard = spawn(command, args, { detached: true, stdio: 'ignore' });
  guard.on('error', () => undefined); // no guard (e.g. no /bin/sh) must not fail the test
  guard.unref(); // never keeps the test process alive
  return {
    cancel() {
      if (guard.pid !== undefined && guard.exitCode === null && guard.signalCode === null) {
        try {
          process.kill(guard.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

// $1 the test process, $2 the guarded one. A process that has exited but is not reaped yet (a
// zombie, e.g. while its parent is being killed too) still answers kill -0: /proc tells (Linux).
// SIGCONT first: a frozen (SIGSTOPped) node must die too.
const KILL_WHEN_ORPHANED = `
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed -n 's/^.*) \\(.\\).*$/\\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
while alive "$1"; do
  alive "$2" || exit 0
  sleep 1
done
kill -CONT "$2" 2>/dev/null
kill -KILL "$2" 2>/dev/null
exit 0
`;

/** SIGKILLs process `pid` within about a second of the current process's death, however it dies. */
export function killWhenOrphaned(pid: number, owner = process.pid): Guard {
  return detachedGuard('/bin/sh', ['-c', KILL_WHEN_ORPHANED, 'stockhold-test-guard', String(owner), String(pid)]);
}

// argv: the test process's pid, the admin connection string, the database's name, the path of `pg`.
const DROP_WHEN_ORPHANED = `
const [owner, adminUrl, name, pgPath] = process.argv.slice(1);
const zombie = () => { try { return /\\) Z [^)]*$/.test(require('fs').readFileSync('/proc/' + owner + '/stat', 'utf8')); } catch { return false; } };
const alive = () => { try { process.kill(Number(owner), 0); return !zombie(); } catch (e) { return e.code === 'EPERM'; } };
const timer = setInterval(async () => {
  if (alive()) return;
  clearInterval(timer);
  const { Client } = require(pgPath);
  const client = new Client({ connectionString: adminUrl });
  try {
    await client.connect();
    await client.query('DROP DATABASE IF EXISTS "' + name.replace(/"/g, '""') + '" WITH (FORCE)');
  } finally {
    await client.end().catch(() => undefined);
  }
}, 1000);
`;

/**
 * Drops database `name` (through `adminUrl`, a connection to another database of the same server)
 * within about a second of the current process's death, however it dies.
 */
export function dropWhenOrphaned(adminUrl: string, name: string, owner = process.pid): Guard {
  return detachedGuard(process.execPath, [
    '-e',
    DROP_WHEN_ORPHANED,
    String(owner),
    adminUrl,
    name,
    require.resolve('pg'),
  ]);
}
