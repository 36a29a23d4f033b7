/**
 * The faults, one kind per store or process, each breaking something the way production does and
 * resolving when the broken thing is back (the moment "heal time" is measured from). Each names
 * its target so that combined runs never put two faults on one target at once.
 */
import { assertNotStopping, sleep } from './procs';
import type { Stack } from './stack';

export type Target = 'redis' | 'postgres' | 'temporal' | 'worker' | 'api' | 'clients';

/** How long the parts of a fault last: a full run's figures, or a test's shorter ones. */
export interface Timing {
  /** Traffic before the fault and after it ends (before the heal check). */
  beforeMs: number;
  afterMs: number;
  /** Redis wipe: traffic on the flushed node before it is also killed and restarted empty. */
  wipeGapMs: number;
  /** Redis partial loss: how long traffic changes the keys between DUMP and RESTORE. */
  partialWindowMs: number;
  freezeMs: number;
  pgDownMs: number;
  /** Repetitions of the process kills and the pause between them. */
  temporalKills: number;
  workerKills: number;
  apiKills: number;
  killGapMs: [number, number];
  resendMs: number;
}

export const FULL_TIMING: Timing = {
  beforeMs: 10_000,
  afterMs: 10_000,
  wipeGapMs: 10_000,
  partialWindowMs: 8_000,
  freezeMs: 10_000,
  pgDownMs: 10_000,
  temporalKills: 2,
  workerKills: 5,
  apiKills: 3,
  killGapMs: [3_000, 8_000],
  resendMs: 30_000,
};

export const SHORT_TIMING: Timing = {
  beforeMs: 3_000,
  afterMs: 3_000,
  wipeGapMs: 3_000,
  partialWindowMs: 3_000,
  freezeMs: 4_000,
  pgDownMs: 4_000,
  temporalKills: 1,
  workerKills: 2,
  apiKills: 2,
  killGapMs: [1_000, 3_000],
  resendMs: 8_000,
};

export interface FaultContext {
  stack: Stack;
  timing: Timing;
  /** The SKUs of the current phase (partial loss aims at them). */
  skus: { normal: string[]; flash: string };
  log(msg: string): void;
}

export interface FaultKind {
  name: string;
  target: Target;
  /** What it does, for the report. */
  what: string;
  inject(ctx: FaultContext): Promise<void>;
}

const between = ([lo, hi]: [number, number]) => lo + Math.floor(Math.random() * (hi - lo));

/** Waits (up to `ms`) until `predicate` holds: aim a fault at a moment with work in flight. */
async function whenever(predicate: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate() && Date.now() < until) await sleep(20);
}

// Atomically drops some holds of a SKU and lowers `reserved` by them, as a replica that missed
// those writes would have it. KEYS: stock, holds. ARGV: how many holds to drop. Returns units dropped.
const DROP_HOLDS = `
local fields = redis.call('HGETALL', KEYS[2])
local dropped, units = 0, 0
for i = 1, #fields, 2 do
  if dropped >= tonumber(ARGV[1]) then break end
  redis.call('HDEL', KEYS[2], fields[i])
  units = units + tonumber(fields[i + 1])
  dropped = dropped + 1
end
if units > 0 then redis.call('HINCRBY', KEYS[1], 'reserved', -units) end
return units
`;

export const FAULTS: FaultKind[] = [
  {
    name: 'redis-wipe',
    target: 'redis',
    what: 'FLUSHALL mid-sale; later kill -9 and restart empty on the same port',
    async inject({ stack, timing, log }) {
      log('FLUSHALL');
      await stack.redis.client.flushall();
      await sleep(timing.wipeGapMs);
      log('redis-server kill -9, restarted empty on the same port');
      await stack.redis.killAndRestartEmpty();
    },
  },
  {
    name: 'redis-partial',
    target: 'redis',
    what: "DUMP a few SKUs' keys, let traffic change them, RESTORE … REPLACE the old values; then drop some holds and lower reserved (the loaded marker survives)",
    async inject({ stack, timing, skus, log }) {
      const r = stack.redis.client;
      const victims = [skus.flash, ...skus.normal.slice(0, 2)];
      const names = victims.flatMap((sku) => [`item:{${sku}}:stock`, `item:{${sku}}:holds`, `item:{${sku}}:done`]);
      const dumps = await Promise.all(names.map((k) => r.dumpBuffer(k)));
      log(`DUMP ${names.length} keys of ${victims.join(', ')}; traffic changes them for ${timing.partialWindowMs / 1000} s`);
      await sleep(timing.partialWindowMs);
      const multi = r.multi();
      names.forEach((k, i) => {
        const dump = dumps[i];
        if (dump) multi.restore(k, 0, dump, 'REPLACE');
        else multi.del(k);
      });
      await multi.exec();
      log('RESTORE … REPLACE: those SKUs are back to their old values');
      await sleep(timing.partialWindowMs / 2);
      let units = 0;
      for (const sku of skus.normal.slice(2, 4)) {
        units += Number(await r.eval(DROP_HOLDS, 2, `item:{${sku}}:stock`, `item:{${sku}}:holds`, 3));
      }
      log(`dropped holds worth ${units} units of ${skus.normal.slice(2, 4).join(', ')} and lowered reserved`);
    },
  },
  {
    name: 'redis-freeze',
    target: 'redis',
    what: 'SIGSTOP redis-server, SIGCONT later (connections stay open, nothing answers)',
    async inject({ stack, timing, log }) {
      log(`SIGSTOP redis-server for ${timing.freezeMs / 1000} s`);
      stack.redis.freeze();
      try {
        await sleep(timing.freezeMs);
      } finally {
        stack.redis.thaw();
      }
      log('SIGCONT');
    },
  },
  {
    name: 'pg-crash',
    target: 'postgres',
    what: 'pg_ctl -m immediate stop while commits are in flight; down during holds; started again',
    async inject({ stack, timing, log }) {
      await whenever(() => stack.workload.commitsInFlight > 0, 5_000);
      log(`pg_ctl -m immediate stop (${stack.workload.commitsInFlight} commits in flight); down for ${timing.pgDownMs / 1000} s`);
      await stack.pg.cluster.crash();
      await sleep(timing.pgDownMs);
      assertNotStopping('PostgreSQL');
      await stack.pg.cluster.start();
      log('PostgreSQL started again (crash recovery done)');
    },
  },
  {
    name: 'temporal-kill',
    target: 'temporal',
    what: 'kill -9 the Temporal dev server, restart it on its state file',
    async inject({ stack, timing, log }) {
      for (let i = 1; i <= timing.temporalKills; i++) {
        if (i > 1) await sleep(between(timing.killGapMs) * 2);
        log(`Temporal kill -9 (${i}/${timing.temporalKills})`);
        const t = Date.now();
        await stack.temporal.killAndRestart();
        log(`Temporal back after ${((Date.now() - t) / 1000).toFixed(1)} s`);
      }
    },
  },
  {
    name: 'worker-kill',
    target: 'worker',
    what: 'SIGKILL the worker at random moments, restarting it each time',
    async inject({ stack, timing, log }) {
      for (let i = 1; i <= timing.workerKills; i++) {
        if (i > 1) await sleep(between(timing.killGapMs));
        await stack.service.worker.kill9();
        log(`worker SIGKILL (${i}/${timing.workerKills}); restarting`);
        await stack.service.startWorker();
      }
    },
  },
  {
    name: 'api-kill',
    target: 'api',
    what: 'SIGKILL the API mid-request, restart it',
    async inject({ stack, timing, log }) {
      for (let i = 1; i <= timing.apiKills; i++) {
        if (i > 1) await sleep(between(timing.killGapMs));
        await whenever(() => stack.workload.requestsInFlight > 0, 3_000);
        stack.recorder.apiDown = true;
        log(`API SIGKILL with ${stack.workload.requestsInFlight} requests in flight (${i}/${timing.apiKills}); restarting`);
        await stack.service.api.kill9();
        try {
          await stack.service.startApi();
        } finally {
          stack.recorder.apiDown = false;
        }
      }
    },
  },
  {
    name: 'client-resend',
    target: 'clients',
    what: 'clients give up after 150–1200 ms and resend, with the same reservationId or without one',
    async inject({ stack, timing, log }) {
      log(`clients resend after their own short timeouts for ${timing.resendMs / 1000} s`);
      stack.workload.resendMode = true;
      try {
        await sleep(timing.resendMs);
      } finally {
        stack.workload.resendMode = false;
      }
    },
  },
];

export function faultNamed(name: string): FaultKind | undefined {
  return FAULTS.find((f) => f.name === name);
}

/** 2–3 kinds at random, on distinct targets. */
export function randomCombination(): FaultKind[] {
  const shuffled = [...FAULTS].sort(() => Math.random() - 0.5);
  const n = 2 + Math.floor(Math.random() * 2);
  const picked: FaultKind[] = [];
  for (const f of shuffled) if (picked.length < n && !picked.some((p) => p.target === f.target)) picked.push(f);
  return picked;
}
