/**
 * npm run bench:capacity [-- --n 200 --concurrency 8 --label after --paths commit,signal,cancel,expiry,rejected,refused,extend]
 *
 * What one reservation costs, path by path, on a private stack of its own: a redis-server and a
 * PostgreSQL 15 cluster (test/helpers, with pg_stat_statements preloaded) on spare ports, a
 * Temporal dev server from .tools, and the service's own `node lib/worker.js` and
 * `node lib/api/server.js`. Nothing shared is touched. For each path it runs N reservations and
 * measures, per reservation:
 *
 * - Temporal Cloud Actions, counted from each workflow's recorded history (./capacity-actions.ts);
 * - Redis commands (INFO commandstats deltas, EVALSHA among them);
 * - PostgreSQL statements (pg_stat_statements `calls`), write transactions (transaction ids
 *   taken) and WAL bytes (pg_current_wal_lsn deltas: the cluster is private, so the WAL is ours);
 * - CPU seconds of the API, the worker, the Temporal server, redis-server and PostgreSQL
 *   (utime + stime from /proc, so other load on the machine does not inflate them).
 *
 * The reconciler runs all the time (as in production); an idle window measured first gives its
 * rate, which is subtracted from every path's window and reported as the deployment's fixed cost.
 * Prints a table and merges the run into bench/results/capacity.json under `--label`.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { Redis } from 'ioredis';
import { Client as PgClient } from 'pg';
import { reservationStart } from '../src/api/reservations/workflow-start';
import { PROJECT_ROOT } from '../src/paths';
import { migrate } from '../src/stock/database';
import { startDevServer, type DevServer } from '../src/temporal/dev-server';
import type { reservationWorkflow } from '../src/workflows';
import { awaitHoldUpdate, paymentSucceededSignal, workflowIdOf } from '../src/workflows/definitions';
import { startPostgresCluster, type PostgresCluster } from '../test/helpers/postgres-cluster';
import { freePort, startRedisServer, type RedisServer } from '../test/helpers/redis-server';
import { countActions, meanActions, type ActionCount } from './capacity-actions';
import { cpuSecondsOf } from './harness/cpu';
import { detail, progress } from './harness/progress';
import { killAllNow, spawnNode, stopAll, type ServiceProcess } from './harness/procs';

const LIB = path.join(PROJECT_ROOT, 'lib');
const RESULTS = path.join(PROJECT_ROOT, 'bench', 'results', 'capacity.json');
const PATHS = ['commit', 'signal', 'cancel', 'expiry', 'rejected', 'refused', 'extend'] as const;
type PathName = (typeof PATHS)[number];
const DESCRIPTION: Record<PathName, string> = {
  commit: 'POST reserve (201) → POST commit (200 COMMITTED)',
  signal: 'POST reserve (201) → paymentSucceeded signal → COMMITTED',
  cancel: 'POST reserve (201) → POST cancel (200 CANCELLED)',
  expiry: 'POST reserve (201, ttlSeconds 2) → TTL timer → EXPIRED',
  rejected: 'update-with-start as the API sends it, on a SKU without stock → the Lua hold refuses → REJECTED (409)',
  refused: 'POST reserve on a sold-out SKU → 409 from the Redis pre-check, no workflow',
  extend: 'POST reserve (201) → POST extend (ttlSeconds 1200) → POST commit (200 COMMITTED)',
};
/** Marks the measurement's own SQL, which is left out of the statement counts. */
const OWN_SQL = '/* capacity-bench */';
/** Reservations of the MONITOR pass per path. */
const MONITORED = 20;

interface Options {
  n: number;
  concurrency: number;
  label: string;
  paths: PathName[];
  idleSeconds: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { n: 200, concurrency: 8, label: 'latest', paths: [...PATHS], idleSeconds: 10 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--n') o.n = Number(value);
    else if (flag === '--concurrency') o.concurrency = Number(value);
    else if (flag === '--label') o.label = String(value);
    else if (flag === '--idle') o.idleSeconds = Number(value);
    else if (flag === '--paths') o.paths = String(value).split(',') as PathName[];
    else if (flag === '--help') {
      console.log(
        'npm run bench:capacity -- [--n 200] [--concurrency 8] [--label latest] [--idle 10] [--paths commit,signal,cancel,expiry,rejected,refused,extend]',
      );
      process.exit(0);
    } else continue;
    i++;
  }
  for (const p of o.paths) if (!PATHS.includes(p)) throw new Error(`unknown path ${p}; known: ${PATHS.join(', ')}`);
  if (!(o.n > 0 && o.concurrency > 0)) throw new Error('--n and --concurrency must be positive');
  return o;
}

// ---------------------------------------------------------------- the stack

interface Stack {
  url: string;
  adminToken: string;
  clientToken: string;
  taskQueue: string;
  temporal: Client;
  redis: Redis;
  pg: PgClient;
  pids: { api: number; worker: number; temporal: number; redis: number; postgres: () => number | undefined };
  close(): Promise<void>;
}

async function waitFor(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
  proc?: ServiceProcess,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.child.exitCode !== null)
      throw new Error(`${what} exited with ${proc.child.exitCode}:\n${proc.tail()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > until)
      throw new Error(`${what} was not ready within ${timeoutMs / 1000} s${proc ? `:\n${proc.tail()}` : ''}`);
    await sleep(250);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function startStack(): Promise<Stack> {
  for (const entry of [path.join(LIB, 'worker.js'), path.join(LIB, 'api', 'server.js')]) {
    if (!existsSync(entry))
      throw new Error(
        `${path.relative(PROJECT_ROOT, entry)} not found: run \`npm run build\` first (\`npm run bench:capacity\` does)`,
      );
  }
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => undefined);
    closers.length = 0;
  };
  try {
    const redisNode: RedisServer = await startRedisServer();
    closers.push(() => redisNode.stop());
    detail(`redis-server ${redisNode.url} (pid ${redisNode.pid})`);
    const cluster: PostgresCluster = await startPostgresCluster({
      settings: {
        shared_preload_libraries: 'pg_stat_statements',
        'pg_stat_statements.track': 'top',
        'pg_stat_statements.track_utility': 'on',
      },
    });
    closers.push(() => cluster.stop());
    const databaseUrl = cluster.url('stockhold');
    const admin = new PgClient({ connectionString: cluster.url('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE stockhold');
    await admin.end();
    await migrate(databaseUrl);
    const pg = new PgClient({ connectionString: databaseUrl });
    await pg.connect();
    closers.push(() => pg.end());
    await pg.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    detail(`PostgreSQL 15 ${databaseUrl} (private cluster, pg_stat_statements)`);

    const temp = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'stockhold-capacity-'));
    closers.push(async () => rmSync(temp, { recursive: true, force: true }));
    const temporalAddress = `127.0.0.1:${await freePort()}`;
    const dev: DevServer = await startDevServer({
      address: temporalAddress,
      namespace: 'default',
      dataDir: temp,
      uiPort: await freePort(),
    });
    closers.push(() => dev.stop());
    detail(`Temporal dev server ${temporalAddress} (state in ${temp})`);

    const adminToken = `capacity-admin-${process.pid}`;
    const clientToken = `capacity-client-${process.pid}`;
    const taskQueue = 'stockhold-capacity';
    const env = (port: number): NodeJS.ProcessEnv => ({
      ...process.env,
      PORT: String(port),
      REDIS_URL: redisNode.url,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
      INVENTORY_ADMIN_TOKEN: adminToken,
      INVENTORY_API_TOKEN: clientToken,
      LOG_LEVEL: 'warn',
    });
    const worker = spawnNode(path.join(LIB, 'worker.js'), { env: env(0), logFile: path.join(temp, 'worker.log') });
    closers.push(() => worker.stop(15_000));
    const temporal = new Client({
      connection: await Connection.connect({ address: temporalAddress }),
      namespace: 'default',
    });
    closers.push(() => temporal.connection.close());
    await waitFor(
      'the worker',
      120_000,
      async () => {
        const r = await temporal.workflowService.describeTaskQueue({
          namespace: 'default',
          taskQueue: { name: taskQueue },
          taskQueueType: 1,
        });
        return (r.pollers?.length ?? 0) > 0;
      },
      worker,
    );
    const port = await freePort();
    const api = spawnNode(path.join(LIB, 'api', 'server.js'), { env: env(port), logFile: path.join(temp, 'api.log') });
    closers.push(() => api.stop());
    const url = `http://127.0.0.1:${port}`;
    await waitFor('the API', 60_000, async () => (await fetch(`${url}/readyz`)).status === 200, api);
    detail(`worker (pid ${worker.pid}) and API ${url} (pid ${api.pid}) from lib/`);
    const redis = new Redis(redisNode.url);
    closers.push(async () => void (await redis.quit()));
    return {
      url,
      adminToken,
      clientToken,
      taskQueue,
      temporal,
      redis,
      pg,
      pids: {
        api: api.pid,
        worker: worker.pid,
        temporal: dev.process.pid!,
        redis: redisNode.pid,
        postgres: () => cluster.pid(),
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

// ---------------------------------------------------------------- what is measured

interface Snapshot {
  at: number;
  redis: Record<string, number>;
  statements: Map<string, { query: string; calls: number }>;
  xacts: number;
  walLsn: string;
  cpu: Record<string, number>;
}

/** PostgreSQL's CPU: the postmaster with its reaped children, plus every live backend and helper. */
function postgresCpu(postmaster: number | undefined): number {
  if (!postmaster) return 0;
  const ticks = 100;
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      const ppid = Number(f[1]);
      if (pid === postmaster) total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / ticks;
      else if (ppid === postmaster) total += (Number(f[11]) + Number(f[12])) / ticks;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

async function snapshot(s: Stack): Promise<Snapshot> {
  const info = await s.redis.info('commandstats');
  const redis: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) redis[m[1]!] = Number(m[2]);
  const rows = await s.pg.query<{ queryid: string; query: string; calls: string }>(
    `${OWN_SQL} SELECT queryid::text, query, calls::text FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  const statements = new Map<string, { query: string; calls: number }>();
  for (const r of rows.rows)
    if (!r.query.includes(OWN_SQL) && !/pg_stat_statements/.test(r.query))
      statements.set(r.queryid, { query: r.query, calls: Number(r.calls) });
  const db = await s.pg.query<{ xacts: string; lsn: string }>(
    // The next transaction id to be assigned: its delta is the number of transactions that wrote
    // (read-only ones take none). pg_stat_database's counters would lag: backends flush them late.
    `${OWN_SQL} SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xacts, pg_current_wal_lsn()::text AS lsn`,
  );
  const cpu: Record<string, number> = {
    api: cpuSecondsOf(s.pids.api) ?? 0,
    worker: cpuSecondsOf(s.pids.worker) ?? 0,
    temporal: cpuSecondsOf(s.pids.temporal) ?? 0,
    redis: cpuSecondsOf(s.pids.redis) ?? 0,
    postgres: postgresCpu(s.pids.postgres()),
  };
  return { at: Date.now(), redis, statements, xacts: Number(db.rows[0]!.xacts), walLsn: db.rows[0]!.lsn, cpu };
}

interface Usage {
  seconds: number;
  redis: Record<string, number>;
  redisTotal: number;
  statements: { query: string; calls: number }[];
  statementTotal: number;
  /** Statements other than BEGIN / COMMIT / ROLLBACK. */
  statementWork: number;
  /** Transactions that wrote (took a transaction id). */
  xacts: number;
  walBytes: number;
  cpu: Record<string, number>;
}

async function usageBetween(s: Stack, a: Snapshot, b: Snapshot): Promise<Usage> {
  const redis: Record<string, number> = {};
  for (const [cmd, calls] of Object.entries(b.redis)) {
    const d = calls - (a.redis[cmd] ?? 0);
    // INFO and the measurement's own SELECTs are the measurement, not the service.
    if (d > 0 && cmd !== 'info') redis[cmd] = d;
  }
  const statements: { query: string; calls: number }[] = [];
  for (const [id, st] of b.statements) {
    const d = st.calls - (a.statements.get(id)?.calls ?? 0);
    if (d > 0) statements.push({ query: st.query.replace(/\s+/g, ' ').slice(0, 160), calls: d });
  }
  statements.sort((x, y) => y.calls - x.calls);
  const wal = await s.pg.query<{ bytes: string }>(`${OWN_SQL} SELECT pg_wal_lsn_diff($1, $2)::text AS bytes`, [
    b.walLsn,
    a.walLsn,
  ]);
  const cpu: Record<string, number> = {};
  for (const k of Object.keys(b.cpu)) cpu[k] = b.cpu[k]! - (a.cpu[k] ?? 0);
  const statementTotal = statements.reduce((t, x) => t + x.calls, 0);
  const isTx = (q: string) => /^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)\b/i.test(q);
  return {
    seconds: (b.at - a.at) / 1000,
    redis,
    redisTotal: Object.values(redis).reduce((t, x) => t + x, 0),
    statements,
    statementTotal,
    statementWork: statements.filter((x) => !isTx(x.query)).reduce((t, x) => t + x.calls, 0),
    xacts: b.xacts - a.xacts,
    walBytes: Number(wal.rows[0]!.bytes),
    cpu,
  };
}

/** What a window used beyond the idle rate (the reconciler's), divided by the reservations in it. */
function perReservation(u: Usage, idle: Usage, n: number) {
  const over = (value: number, idleValue: number) => Math.max(0, value - (idleValue / idle.seconds) * u.seconds) / n;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const redisByCommand: Record<string, number> = {};
  for (const [cmd, calls] of Object.entries(u.redis)) {
    const v = over(calls, idle.redis[cmd] ?? 0);
    if (v >= 0.005) redisByCommand[cmd] = r3(v);
  }
  const cpuMs: Record<string, number> = {};
  for (const [k, v] of Object.entries(u.cpu)) cpuMs[k] = Math.round(over(v, idle.cpu[k] ?? 0) * 1e5) / 100;
  const idleStatements = new Map(idle.statements.map((x) => [x.query, x.calls]));
  return {
    redisCommands: r3(over(u.redisTotal, idle.redisTotal)),
    redisByCommand,
    evalsha: r3(over(u.redis.evalsha ?? 0, idle.redis.evalsha ?? 0)),
    pgStatements: r3(over(u.statementTotal, idle.statementTotal)),
    pgStatementsExcludingTxControl: r3(over(u.statementWork, idle.statementWork)),
    pgWriteTransactions: r3(over(u.xacts, idle.xacts)),
    walBytes: Math.round(over(u.walBytes, idle.walBytes)),
    cpuMs,
    topStatements: u.statements
      .map((x) => ({ calls: r3(over(x.calls, idleStatements.get(x.query) ?? 0)), query: x.query }))
      .filter((x) => x.calls >= 0.01)
      .slice(0, 12),
  };
}

// ---------------------------------------------------------------- the lifecycles

async function http(
  s: Stack,
  method: string,
  route: string,
  body: unknown,
  admin = false,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${s.url}${route}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin ? s.adminToken : s.clientToken}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

function expectStatus(what: string, got: { status: number; json: unknown }, want: number): void {
  if (got.status !== want)
    throw new Error(`${what}: HTTP ${got.status}, expected ${want}: ${JSON.stringify(got.json)}`);
}

/** Runs `work(i)` for i in 0..n-1, `concurrency` at a time. */
async function pool(n: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      for (let i = next++; i < n; i = next++) await work(i);
    }),
  );
}

async function runPath(s: Stack, name: PathName, sku: string, ids: string[], concurrency: number): Promise<void> {
  const reserve = async (id: string, ttlSeconds?: number) =>
    expectStatus(
      `reserve ${id}`,
      await http(s, 'POST', '/v1/reservations', {
        reservationId: id,
        items: [{ sku, quantity: 1 }],
        customerId: 'capacity-customer',
        ...(ttlSeconds ? { ttlSeconds } : {}),
      }),
      201,
    );
  switch (name) {
    case 'commit':
      return pool(ids.length, concurrency, async (i) => {
        await reserve(ids[i]!);
        expectStatus(
          'commit',
          await http(s, 'POST', `/v1/reservations/${ids[i]}/commit`, { paymentId: `pay-${ids[i]}` }),
          200,
        );
      });
    case 'extend':
      return pool(ids.length, concurrency, async (i) => {
        await reserve(ids[i]!);
        expectStatus('extend', await http(s, 'POST', `/v1/reservations/${ids[i]}/extend`, { ttlSeconds: 1_200 }), 200);
        expectStatus(
          'commit',
          await http(s, 'POST', `/v1/reservations/${ids[i]}/commit`, { paymentId: `pay-${ids[i]}` }),
          200,
        );
      });
    case 'cancel':
      return pool(ids.length, concurrency, async (i) => {
        await reserve(ids[i]!);
        expectStatus('cancel', await http(s, 'POST', `/v1/reservations/${ids[i]}/cancel`, { reason: 'capacity' }), 200);
      });
    case 'signal':
      return pool(ids.length, concurrency, async (i) => {
        await reserve(ids[i]!);
        const handle = s.temporal.workflow.getHandle<typeof reservationWorkflow>(workflowIdOf(ids[i]!));
        await handle.signal(paymentSucceededSignal, { paymentId: `pay-${ids[i]}` });
        const view = await handle.result();
        if (view.status !== 'COMMITTED') throw new Error(`${ids[i]} ended ${view.status}`);
      });
    case 'expiry':
      return pool(ids.length, concurrency * 4, async (i) => {
        await reserve(ids[i]!, 2);
        const view = await s.temporal.workflow.getHandle<typeof reservationWorkflow>(workflowIdOf(ids[i]!)).result();
        if (view.status !== 'EXPIRED') throw new Error(`${ids[i]} ended ${view.status}`);
      });
    case 'refused':
      return pool(ids.length, concurrency, async (i) => {
        const got = await http(s, 'POST', '/v1/reservations', { reservationId: ids[i], items: [{ sku, quantity: 1 }] });
        expectStatus('refused', got, 409);
      });
    case 'rejected':
      // The API refuses these at its Redis pre-check; a hold is refused inside the workflow only when
      // the pre-check passed and another buyer took the units meanwhile. To run that path N times,
      // start the workflows as the API does (update-with-start, same options), without the pre-check.
      return pool(ids.length, concurrency, async (i) => {
        const id = ids[i]!;
        const items = [{ sku, quantity: 1 }];
        const start = reservationStart(
          { reservationId: id, items, ttlSeconds: 600, customerId: 'capacity-customer' },
          { taskQueue: s.taskQueue, maxTtlSeconds: 86_400 },
        );
        try {
          await s.temporal.workflow.executeUpdateWithStart(awaitHoldUpdate, {
            args: [start.hold],
            startWorkflowOperation: start.operation,
          });
          throw new Error(`${id} was held`);
        } catch (err) {
          if (!(err instanceof WorkflowUpdateFailedError)) throw err;
        }
      });
  }
}

/**
 * Which of a path's Redis commands the clients send and which run inside the Lua scripts: INFO
 * commandstats counts both alike, MONITOR tells them apart (a script's commands show as `lua`).
 * MONITOR slows Redis, so this is a separate small pass, not the measured window.
 */
async function monitorPass(
  s: Stack,
  name: PathName,
  sku: string,
  ids: string[],
  concurrency: number,
): Promise<{ client: number; inScripts: number }> {
  const monitor = await s.redis.monitor();
  let client = 0;
  let inScripts = 0;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const cmd = String(args[0] ?? '').toLowerCase();
    if (cmd === 'info' || cmd === 'monitor') return;
    if (/lua/.test(source)) inScripts++;
    else client++;
  });
  try {
    await runPath(s, name, sku, ids, concurrency);
    await sleep(500);
  } finally {
    monitor.disconnect();
  }
  return { client: client / ids.length, inScripts: inScripts / ids.length };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  progress(`capacity: ${opts.n} reservations per path, ${opts.concurrency} at a time, label "${opts.label}"`);
  const s = await startStack();
  const tag = randomUUID().slice(0, 6);
  try {
    // Every SKU exists before the idle window, so the reconciler's scans cost the same throughout.
    const skus: Record<PathName, string> = Object.fromEntries(
      PATHS.map((p) => [p, `CAP-${p.toUpperCase()}-${tag}`]),
    ) as Record<PathName, string>;
    for (const p of PATHS) {
      const total = p === 'refused' || p === 'rejected' ? 0 : opts.n + MONITORED + 10;
      expectStatus(
        `create ${skus[p]}`,
        await http(s, 'POST', '/v1/skus', { sku: skus[p], total, name: `capacity ${p}` }, true),
        201,
      );
    }
    // Warm-up: the first reservations pay for JIT, pools and the workflow bundle's first load.
    const warm = Array.from({ length: 20 }, (_, i) => `cap-warm-${tag}-${i}`);
    expectStatus(
      'warm-up SKU',
      await http(s, 'POST', '/v1/skus', { sku: `CAP-WARM-${tag}`, total: 100, name: 'warm-up' }, true),
      201,
    );
    await runPath(s, 'commit', `CAP-WARM-${tag}`, warm, opts.concurrency);
    await sleep(3_000);

    progress(`idle window: ${opts.idleSeconds} s (the reconciler and pollers alone)`);
    const i0 = await snapshot(s);
    await sleep(opts.idleSeconds * 1000);
    const idle = await usageBetween(s, i0, await snapshot(s));
    const idleRates = {
      redisCommandsPerSecond: Math.round((idle.redisTotal / idle.seconds) * 10) / 10,
      pgStatementsPerSecond: Math.round((idle.statementTotal / idle.seconds) * 10) / 10,
      walBytesPerSecond: Math.round(idle.walBytes / idle.seconds),
      cpuMsPerSecond: Object.fromEntries(
        Object.entries(idle.cpu).map(([k, v]) => [k, Math.round((v / idle.seconds) * 1e4) / 10]),
      ),
    };
    detail(`idle: ${JSON.stringify(idleRates)}`);

    const results: Record<string, unknown> = {};
    for (const p of opts.paths) {
      const ids = Array.from({ length: opts.n }, (_, i) => `cap-${p}-${tag}-${i}`);
      progress(`${p}: ${DESCRIPTION[p]}`);
      const a = await snapshot(s);
      const t0 = Date.now();
      await runPath(s, p, skus[p], ids, opts.concurrency);
      const wall = (Date.now() - t0) / 1000;
      await sleep(1_500); // let the last workflow tasks and visibility writes finish inside the window
      const b = await snapshot(s);
      const per = perReservation(await usageBetween(s, a, b), idle, opts.n);
      let actions: ActionCount | undefined;
      if (p !== 'refused') {
        const counts: ActionCount[] = [];
        await pool(
          ids.length,
          8,
          async (i) =>
            void counts.push(countActions(await s.temporal.workflow.getHandle(workflowIdOf(ids[i]!)).fetchHistory())),
        );
        actions = meanActions(counts);
      }
      const split = await monitorPass(
        s,
        p,
        skus[p],
        Array.from({ length: MONITORED }, (_, i) => `cap-${p}-mon-${tag}-${i}`),
        opts.concurrency,
      );
      const r2 = (x: number) => Math.round(x * 100) / 100;
      // The scripts' own commands come from MONITOR (the reconciler runs none while the stores
      // agree); what the clients sent is the rest of the measured window's commands.
      const redisSplit = {
        clientSent: r2(Math.max(0, per.redisCommands - split.inScripts)),
        inScripts: r2(split.inScripts),
        clientSentSeenByMonitor: r2(split.client),
        note: `inScripts from MONITOR over ${MONITORED} more reservations; clientSent = redisCommands - inScripts (MONITOR's own client count also has the reconciler's reads of that second)`,
      };
      results[p] = {
        description: DESCRIPTION[p],
        n: opts.n,
        wallSeconds: wall,
        temporalActions: actions ?? null,
        ...per,
        redisSplit,
      };
      detail(
        `actions ${actions?.total ?? 0}, redis ${per.redisCommands} (evalsha ${per.evalsha}; sent ${redisSplit.clientSent}, in scripts ${redisSplit.inScripts}), pg statements ${per.pgStatements} in ${per.pgWriteTransactions} write tx, WAL ${per.walBytes} B, ` +
          `CPU ms api ${per.cpuMs.api} worker ${per.cpuMs.worker} temporal ${per.cpuMs.temporal} redis ${per.cpuMs.redis} pg ${per.cpuMs.postgres}`,
      );
      await sleep(2_000);
    }

    printTable(results);
    let all: Record<string, unknown> = {};
    try {
      all = JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, unknown>;
    } catch {
      // first run
    }
    const runs = (all.runs ?? {}) as Record<string, unknown>;
    runs[opts.label] = {
      date: new Date().toISOString(),
      command: `npm run bench:capacity -- ${process.argv.slice(2).join(' ')}`.trim(),
      n: opts.n,
      concurrency: opts.concurrency,
      commit: gitCommit(),
      machine: {
        cores: (await import('node:os')).cpus().length,
        loadAverage: (await import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100),
      },
      idle: idleRates,
      paths: results,
    };
    writeFileSync(RESULTS, `${JSON.stringify({ ...all, runs }, null, 2)}\n`);
    progress(`wrote ${path.relative(PROJECT_ROOT, RESULTS)} (label "${opts.label}")`);
  } finally {
    await s.close();
  }
}

function gitCommit(): string | undefined {
  try {
    const head = readFileSync(path.join(PROJECT_ROOT, '.git', 'HEAD'), 'utf8').trim();
    return head.startsWith('ref: ')
      ? readFileSync(path.join(PROJECT_ROOT, '.git', head.slice(5)), 'utf8').trim()
      : head;
  } catch {
    return undefined;
  }
}

function printTable(results: Record<string, unknown>): void {
  const rows = Object.entries(results).map(([name, r]) => {
    const x = r as ReturnType<typeof perReservation> & {
      temporalActions: ActionCount | null;
      redisSplit: { clientSent: number };
    };
    return [
      name,
      String(x.temporalActions?.total ?? 0),
      String(x.redisCommands),
      String(x.evalsha),
      String(x.redisSplit.clientSent),
      String(x.pgStatements),
      String(x.pgWriteTransactions),
      String(x.walBytes),
      String(x.cpuMs.api),
      String(x.cpuMs.worker),
      String(x.cpuMs.temporal),
      String(x.cpuMs.redis),
      String(x.cpuMs.postgres),
    ];
  });
  const head = [
    'path',
    'actions',
    'redis cmds',
    'evalsha',
    'redis sent',
    'pg stmts',
    'pg write tx',
    'WAL B',
    'api ms',
    'worker ms',
    'temporal ms',
    'redis ms',
    'pg ms',
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\nper reservation (CPU: ms of CPU time per lifecycle)\n${line(head)}\n${rows.map(line).join('\n')}\n`);
}

process.on('SIGINT', () => {
  killAllNow();
  process.exit(130);
});
main().then(
  () => stopAll().then(() => process.exit(0)),
  (err: unknown) => {
    console.error('capacity failed:', err);
    killAllNow();
    process.exit(1);
  },
);
