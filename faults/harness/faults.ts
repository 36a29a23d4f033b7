/**
 * The faults, one kind per store or process, each breaking something the way production does and
 * resolving when the broken thing is back (the moment "heal time" is measured from). Each names
 * its target so that combined runs never put two faults on one target at once.
 *
 * A fault that meets nothing proves nothing (a PostgreSQL crash with no commit in flight, a
 * partial loss that drops no hold), so each one is aimed: it waits (up to `aimMs`) for the moment
 * it is meant to break, and says what it met (FaultHit). A phase whose fault hit nothing fails
 * (phase.ts, judge): a run must not pass on faults that missed.
 */
import type { Pool } from 'pg';
import { keys } from '../../src/stock/redis/keys';
import { assertNotStopping, sleep } from './procs';
import type { Stack } from './stack';
import { HARNESS_APPLICATION_NAME } from './stores';

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
  /** How long a fault waits for the moment it is aimed at (work in flight, holds to lose). */
  aimMs: number;
  /** Redis partial loss: how long the flash-sale SKU keeps losing its holds while a crowd comes. */
  flashLossMs: number;
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
  aimMs: 20_000,
  flashLossMs: 4_000,
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
  aimMs: 10_000,
  flashLossMs: 3_000,
};

export interface FaultContext {
  stack: Stack;
  timing: Timing;
  /** The SKUs of the current phase (faults aim at them). */
  skus: { normal: string[]; flash: string };
  log(msg: string): void;
}

/** What one fault met: the work in flight it broke, the holds it lost. */
export interface FaultHit {
  fault: string;
  /** False when it met nothing it is meant to break (the phase then fails). */
  hit: boolean;
  what: string;
}

export interface FaultKind {
  name: string;
  target: Target;
  /** True when it loses Redis data: only then may the reconciler find drift it cannot explain. */
  losesRedisData: boolean;
  /** What it does, for the report. */
  what: string;
  inject(ctx: FaultContext): Promise<FaultHit>;
}

/** How often the flash-sale SKU loses its holds during the partial loss: well inside the reconciler's scan interval (2 s). */
const FLASH_DROP_EVERY_MS = 200;

const between = ([lo, hi]: [number, number]) => lo + Math.floor(Math.random() * (hi - lo));

/** Waits (up to `ms`) until `predicate` holds: a fault aimed at a moment with work in flight. True when it did. */
async function aim(predicate: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if (await predicate()) return true;
    } catch {
      // a store the predicate reads is down: not yet
    }
    if (Date.now() >= until) return false;
    await sleep(20);
  }
}

const answered = (answers: Record<string, number>, status: string) => answers[status] ?? 0;

/** Holds (and their units) Redis has for these SKUs right now. */
async function holdsOf(redis: Stack['redis']['client'], skus: string[]): Promise<{ holds: number; units: number }> {
  const all = await Promise.all(skus.map((sku) => redis.hvals(keys.holds(sku))));
  return {
    holds: all.reduce((n, h) => n + h.length, 0),
    units: all.reduce((n, h) => n + h.reduce((u, q) => u + Number(q), 0), 0),
  };
}

/** The service's PostgreSQL transactions open right now (the harness's own connections left out: stores.ts names them). */
async function openTransactions(pool: Pool): Promise<number> {
  const rows = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> $1 AND xact_start IS NOT NULL AND state <> 'idle'`,
    [HARNESS_APPLICATION_NAME],
  );
  return rows.rows[0]?.n ?? 0;
}

/** How many of `ids` PostgreSQL has as HELD: holds Redis lost that were still promised. */
async function promised(pool: Pool, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const rows = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM reservations WHERE id = ANY($1::text[]) AND status = 'HELD'`,
    [ids],
  );
  return rows.rows[0]?.n ?? 0;
}

// Atomically drops holds of a SKU as a replica that missed those writes would have it: each hold,
// `reserved` lowered by its units, its customer's counts (o:, h:), and on a SKU stocked at several
// locations its allocation (a:) and each location's `r:` with it. KEYS: stock, holds, customers.
// ARGV: how many holds to drop. Returns {units, id…} of the holds dropped.
const DROP_HOLDS = `
local fields = redis.call('HGETALL', KEYS[2])
local dropped, units = {}, 0
for i = 1, #fields, 2 do
  if #dropped >= tonumber(ARGV[1]) then break end
  local id, quantity = fields[i], tonumber(fields[i + 1])
  redis.call('HDEL', KEYS[2], id)
  local customer = redis.call('HGET', KEYS[3], 'o:' .. id)
  if customer then
    redis.call('HDEL', KEYS[3], 'o:' .. id)
    if redis.call('HINCRBY', KEYS[3], 'h:' .. customer, -quantity) <= 0 then redis.call('HDEL', KEYS[3], 'h:' .. customer) end
  end
  if redis.call('HEXISTS', KEYS[1], 'locs') == 1 then
    local spec = redis.call('HGET', KEYS[1], 'a:' .. id) or ('default=' .. quantity)
    for loc, n in string.gmatch(spec, '([^,=]+)=(%d+)') do
      redis.call('HINCRBY', KEYS[1], 'r:' .. loc, -tonumber(n))
    end
    redis.call('HDEL', KEYS[1], 'a:' .. id)
  end
  units = units + quantity
  dropped[#dropped + 1] = id
end
if units > 0 then redis.call('HINCRBY', KEYS[1], 'reserved', -units) end
table.insert(dropped, 1, units)
return dropped
`;

async function dropHolds(
  redis: Stack['redis']['client'],
  sku: string,
  n: number,
): Promise<{ units: number; ids: string[] }> {
  const [units, ...ids] = (await redis.eval(
    DROP_HOLDS,
    3,
    keys.stock(sku),
    keys.holds(sku),
    keys.customers(sku),
    n,
  )) as [number, ...string[]];
  return { units: Number(units), ids };
}

export const FAULTS: FaultKind[] = [
  {
    name: 'redis-wipe',
    target: 'redis',
    losesRedisData: true,
    what: 'FLUSHALL mid-sale (aimed at live holds); later kill -9 and restart empty on the same port',
    async inject({ stack, timing, skus, log }) {
      const r = stack.redis.client;
      const phaseSkus = [...skus.normal, skus.flash];
      // Aimed at live holds: a wipe of counters nobody holds would lose no promise.
      await aim(async () => (await holdsOf(r, phaseSkus)).holds > 0, timing.aimMs);
      const first = await holdsOf(r, phaseSkus).catch(() => ({ holds: 0, units: 0 }));
      log(`FLUSHALL with ${first.holds} holds (${first.units} units) of the phase in Redis`);
      await r.flushall();
      stack.tracker.redisWipedAt = Date.now();
      await sleep(timing.wipeGapMs);
      const second = await holdsOf(r, phaseSkus).catch(() => ({ holds: 0, units: 0 }));
      log(
        `redis-server kill -9 with ${second.holds} holds (${second.units} units) rebuilt or taken since; restarted empty on the same port`,
      );
      await stack.redis.killAndRestartEmpty();
      stack.tracker.redisWipedAt = Date.now();
      return {
        fault: 'redis-wipe',
        hit: first.holds + second.holds > 0,
        what: `FLUSHALL lost ${first.holds} holds (${first.units} units); kill -9 lost ${second.holds} holds (${second.units} units)`,
      };
    },
  },
  {
    name: 'redis-partial',
    target: 'redis',
    losesRedisData: true,
    what: "DUMP two SKUs' keys, let traffic change them, RESTORE … REPLACE the old values; once a flash-sale crowd has taken every unit, drop that SKU's holds every 200 ms for a few seconds while a second crowd comes; drop some holds of two more SKUs (the loaded marker survives)",
    async inject({ stack, timing, skus, log }) {
      const r = stack.redis.client;
      const victims = skus.normal.slice(0, 2);
      const names = victims.flatMap((sku) => [keys.stock(sku), keys.holds(sku), keys.done(sku), keys.customers(sku)]);
      const dumps = await Promise.all(names.map((k) => r.dumpBuffer(k)));
      const holdsThen = await Promise.all(victims.map((sku) => r.hkeys(keys.holds(sku))));
      log(
        `DUMP ${names.length} keys of ${victims.join(', ')}; traffic changes them for ${timing.partialWindowMs / 1000} s`,
      );
      await sleep(timing.partialWindowMs);
      const holdsNow = await Promise.all(victims.map((sku) => r.hkeys(keys.holds(sku))));
      const multi = r.multi();
      names.forEach((k, i) => {
        const dump = dumps[i];
        if (dump) multi.restore(k, 0, dump, 'REPLACE');
        else multi.del(k);
      });
      await multi.exec();
      for (const sku of victims) stack.tracker.redisLostAt.set(sku, Date.now());
      // Whether a lost hold was a promise is judged when it is lost: by the phase's end its
      // reservation may have ended anyway (TTLs of a few seconds).
      let stillPromised = 0;
      const judge = async (ids: string[]) => {
        if (ids.length > 0) stillPromised += Math.max(0, await promised(stack.pg.pool, ids).catch(() => 0));
      };
      // Holds taken in the window are gone now; holds given back in it are back (phantoms).
      const lostByRestore = holdsNow.flatMap((ids, i) => ids.filter((id) => !holdsThen[i]!.includes(id)));
      const phantoms = holdsNow.reduce((n, ids, i) => n + holdsThen[i]!.filter((id) => !ids.includes(id)).length, 0);
      await judge(lostByRestore);
      log(
        `RESTORE … REPLACE: ${victims.join(', ')} back to their old values (${lostByRestore.length} holds lost, ${phantoms} given-back holds back)`,
      );
      await sleep(timing.partialWindowMs / 2);

      // The flash sale: once its crowd has taken every unit, Redis loses the holds again and again
      // (every FLASH_DROP_EVERY_MS for flashLossMs, faster than the reconciler puts them back)
      // while a second crowd comes: Redis offers it units PostgreSQL still promises to the first.
      const flash = keys.stock(skus.flash);
      const soldOut = await aim(async () => {
        const [total, reserved] = await r.hmget(flash, 'total', 'reserved');
        return (
          total !== null && Number(total) - Number(reserved ?? 0) <= 0 && (await r.hlen(keys.holds(skus.flash))) > 0
        );
      }, timing.aimMs);
      const crowd = stack.workload.crowd(skus.flash, 40);
      const flashDropped = new Set<string>();
      let flashUnits = 0;
      for (const stop = Date.now() + timing.flashLossMs; Date.now() < stop; await sleep(FLASH_DROP_EVERY_MS)) {
        const d = await dropHolds(r, skus.flash, 10_000);
        flashUnits += d.units;
        await judge(d.ids.filter((id) => !flashDropped.has(id)));
        for (const id of d.ids) flashDropped.add(id);
      }
      log(
        `${soldOut ? 'flash sale sold out' : 'flash sale not sold out within the aim'}: dropped its holds for ${timing.flashLossMs / 1000} s (${flashDropped.size} reservations, ${flashUnits} units in all) while a crowd of 40 came`,
      );
      void crowd.then(({ held }) => log(`the crowd that came while ${skus.flash} lost holds: ${held} heard HELD`));
      let units = 0;
      const dropped: string[] = [];
      for (const sku of skus.normal.slice(2, 4)) {
        const d = await dropHolds(r, sku, 3);
        units += d.units;
        dropped.push(...d.ids);
        await judge(d.ids);
      }
      log(
        `dropped ${dropped.length} holds worth ${units} units of ${skus.normal.slice(2, 4).join(', ')} and lowered reserved`,
      );
      const atEnd = await promised(stack.pg.pool, [...lostByRestore, ...flashDropped, ...dropped]).catch(() => 0);
      return {
        fault: 'redis-partial',
        hit: stillPromised + atEnd > 0,
        what: `lost ${lostByRestore.length + flashDropped.size + dropped.length} holds (RESTORE ${lostByRestore.length}, flash sale ${flashDropped.size}${soldOut ? ' sold out' : ''}, dropped ${dropped.length}), ${stillPromised} of them HELD in PostgreSQL when lost, ${atEnd} still at the end; ${phantoms} phantom holds`,
      };
    },
  },
  {
    name: 'redis-freeze',
    target: 'redis',
    losesRedisData: false,
    what: 'SIGSTOP redis-server, SIGCONT later (connections stay open, nothing answers)',
    async inject({ stack, timing, log }) {
      const inFlight = stack.workload.requestsInFlight;
      const w = stack.recorder.watch();
      log(`SIGSTOP redis-server for ${timing.freezeMs / 1000} s (${inFlight} reservation writes in flight)`);
      stack.redis.freeze();
      try {
        await sleep(timing.freezeMs);
      } finally {
        stack.redis.thaw();
        w.close();
      }
      log('SIGCONT');
      return {
        fault: 'redis-freeze',
        hit: answered(w.answers, '503') > 0,
        what: `${w.started} requests sent to the frozen Redis, ${answered(w.answers, '503')} of them answered 503; ${inFlight} reservation writes in flight at SIGSTOP`,
      };
    },
  },
  {
    name: 'pg-crash',
    target: 'postgres',
    losesRedisData: false,
    what: 'pg_ctl -m immediate stop while commits are in flight; down during holds; started again',
    async inject({ stack, timing, log }) {
      // Aimed at a commit whose transaction is open; failing that, at any commit in flight.
      let open = 0;
      const workload = stack.workload;
      const both = await aim(
        async () => workload.commitsInFlight > 0 && (open = await openTransactions(stack.pg.pool)) > 0,
        timing.aimMs,
      );
      if (!both) await aim(() => workload.commitsInFlight > 0, timing.aimMs / 2);
      const commits = workload.commitsInFlight;
      log(
        `pg_ctl -m immediate stop (${commits} commits in flight, ${both ? open : 'no'} transactions of the service open); down for ${timing.pgDownMs / 1000} s`,
      );
      const w = stack.recorder.watch();
      await stack.pg.cluster.crash();
      try {
        await sleep(timing.pgDownMs);
        assertNotStopping('PostgreSQL');
        await stack.pg.cluster.start();
      } finally {
        w.close();
      }
      log('PostgreSQL started again (crash recovery done)');
      return {
        fault: 'pg-crash',
        hit: commits > 0,
        what: `crashed with ${commits} commits in flight (${both ? open : 0} transactions of the service open); ${w.started} requests while down, ${answered(w.answers, '503')} answered 503`,
      };
    },
  },
  {
    name: 'temporal-kill',
    target: 'temporal',
    losesRedisData: false,
    what: 'kill -9 the Temporal dev server (with reservation writes in flight), restart it on its state file',
    async inject({ stack, timing, log }) {
      const met: string[] = [];
      let hit = false;
      for (let i = 1; i <= timing.temporalKills; i++) {
        if (i > 1) await sleep(between(timing.killGapMs) * 2);
        await aim(() => stack.workload.requestsInFlight > 0, timing.aimMs / 4);
        const [inFlight, live] = [stack.workload.requestsInFlight, stack.tracker.livePromises()];
        hit ||= inFlight > 0;
        met.push(`${inFlight} writes in flight, ${live} workflows holding`);
        log(
          `Temporal kill -9 (${i}/${timing.temporalKills}) with ${inFlight} reservation writes in flight and ${live} reservations holding`,
        );
        const t = Date.now();
        await stack.temporal.killAndRestart();
        log(`Temporal back after ${((Date.now() - t) / 1000).toFixed(1)} s`);
      }
      return { fault: 'temporal-kill', hit, what: `killed ${timing.temporalKills}× with ${met.join('; ')}` };
    },
  },
  {
    name: 'worker-kill',
    target: 'worker',
    losesRedisData: false,
    what: 'SIGKILL the worker at random moments (with workflow tasks in flight), restarting it each time',
    async inject({ stack, timing, log }) {
      const met: number[] = [];
      for (let i = 1; i <= timing.workerKills; i++) {
        if (i > 1) await sleep(between(timing.killGapMs));
        // Every reservation write in flight is a workflow task (or a local activity) on the worker.
        await aim(() => stack.workload.requestsInFlight > 0, timing.aimMs / 4);
        met.push(stack.workload.requestsInFlight);
        await stack.service.worker.kill9();
        log(`worker SIGKILL (${i}/${timing.workerKills}) with ${met.at(-1)} reservation writes in flight; restarting`);
        await stack.service.startWorker();
      }
      return {
        fault: 'worker-kill',
        hit: met.some((n) => n > 0),
        what: `killed ${timing.workerKills}× with ${met.join(', ')} reservation writes in flight`,
      };
    },
  },
  {
    name: 'api-kill',
    target: 'api',
    losesRedisData: false,
    what: 'SIGKILL the API mid-request, restart it',
    async inject({ stack, timing, log }) {
      const met: number[] = [];
      for (let i = 1; i <= timing.apiKills; i++) {
        if (i > 1) await sleep(between(timing.killGapMs));
        await aim(() => stack.workload.requestsInFlight > 0, timing.aimMs / 4);
        met.push(stack.workload.requestsInFlight);
        stack.recorder.apiDown = true;
        log(`API SIGKILL with ${met.at(-1)} requests in flight (${i}/${timing.apiKills}); restarting`);
        await stack.service.api.kill9();
        try {
          await stack.service.startApi();
        } finally {
          stack.recorder.apiDown = false;
        }
      }
      return {
        fault: 'api-kill',
        hit: met.some((n) => n > 0),
        what: `killed ${timing.apiKills}× with ${met.join(', ')} reservation writes in flight`,
      };
    },
  },
  {
    name: 'client-resend',
    target: 'clients',
    losesRedisData: false,
    what: 'clients give up after 150–1200 ms and resend, with the same reservationId or without one',
    async inject({ stack, timing, log }) {
      log(`clients resend after their own short timeouts for ${timing.resendMs / 1000} s`);
      const w = stack.recorder.watch();
      stack.workload.resendMode = true;
      try {
        await sleep(timing.resendMs);
      } finally {
        stack.workload.resendMode = false;
        w.close();
      }
      const aborted = answered(w.answers, 'client-abort');
      return {
        fault: 'client-resend',
        hit: aborted > 0,
        what: `${aborted} of ${w.started} requests given up by their clients and resent`,
      };
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
