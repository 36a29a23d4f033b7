/**
 * What the benchmark measures: its own isolated stack (the default), or a running one (--url).
 *
 * Own stack: Redis logical DB 12 (flushed), PostgreSQL database `stockhold_bench` (recreated and
 * migrated with the service's migrate()), a Temporal dev server (startDevServer from
 * src/temporal/) on free ports with its state in a temporary directory, then the service's
 * own entry points from its shipped build as separate processes: `node lib/worker.js` and
 * `node lib/api/server.js` (`npm run bench` runs `npm run build` first). Everything listens on
 * and is reached at 127.0.0.1.
 *
 * A scenario can add a second shape of the service on the same Temporal server (startShape): its
 * own worker on its own task queue, N API processes each on its own port, its own database, and
 * e.g. REDIS_CLUSTER_NODES pointing at a private Redis Cluster the scenario started.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, appendFileSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { Redis } from 'ioredis';
import { PROJECT_ROOT } from '../../src/paths';
import { createRedis, keys } from '../../src/stock';
import { migrate } from '../../src/stock/database';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server';
import { detail } from './progress';
import { spawnNode, track, type ServiceProcess } from './procs';

export const BENCH_REDIS_URL = 'redis://127.0.0.1:6379/12';
export const BENCH_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/stockhold_bench';
/** The database of a second shape beside the main stack (the Redis Cluster flash sale). */
export const BENCH_SHAPE_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/stockhold_bench_shape';
/** The service's shipped build (`npm run build`): the benchmark measures what ships, not its own copy in build/. */
const LIB = path.join(PROJECT_ROOT, 'lib');

export interface ApiHandle {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export interface ApiOptions {
  name: string;
  logLevel?: string;
}

/** Another shape of the service beside the main one: its own worker and API processes over other stores. */
export interface ShapeOptions {
  /** Names its processes' logs and its task queue. */
  name: string;
  /** How many API processes (each on its own port). */
  apis: number;
  /** REDIS_CLUSTER_NODES of the shape (`host:port,…`); the main stack's Redis when absent. */
  redisClusterNodes?: string;
  /** REDIS_URL of the shape (a Redis of its own); the main stack's Redis when absent. */
  redisUrl?: string;
  /** The build the shape runs (another revision's lib/, bench/harness/revision.ts); the shipped lib/ when absent. */
  lib?: string;
  /** Its own PostgreSQL database (recreated and migrated), so the main stack's reconciler never sees its SKUs. */
  databaseUrl: string;
}

export interface ShapeHandle {
  urls: string[];
  apiPids: number[];
  workerPid: number;
  taskQueue: string;
  stop(): Promise<void>;
}

export interface Target {
  /** True when the benchmark started this stack itself. */
  own: boolean;
  url: string;
  adminToken: string;
  clientToken: string;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  /** The Redis the service uses (for INFO memory). */
  redisUrl: string;
  /** The benchmark's own stores (the strategies scenario, and the own stack). */
  benchRedisUrl: string;
  benchDatabaseUrl: string;
  apiPid?: number;
  workerPid?: number;
  /** API log level of the own stack. */
  logLevel?: string;
  /** Own stack only: another API process over the same stores (e.g. at another log level). */
  startApi?(opts: ApiOptions): Promise<ApiHandle>;
  /** Own stack only: a worker and `apis` API processes on their own task queue and stores (e.g. Redis Cluster). */
  startShape?(opts: ShapeOptions): Promise<ShapeHandle>;
  temporalPid?: number;
  /** Stops what the benchmark started; `keepLogs` leaves the own stack's logs (returns where). */
  close(keepLogs?: boolean): Promise<string | undefined>;
}

/**
 * The benchmark's processes get their stores from the benchmark alone: a REDIS_CLUSTER_NODES in
 * the caller's environment (it wins over REDIS_URL) must not point the main stack elsewhere.
 */
function withoutStoreSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { REDIS_CLUSTER_NODES: _cluster, API_PROCESSES: _apis, WORKER_PROCESSES: _workers, ...rest } = env;
  return rest;
}

/** Only loopback targets: the benchmark never sends load anywhere else. */
export function assertLoopback(url: string, what: string): void {
  const host = new URL(url.includes('://') ? url : `tcp://${url}`).hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw new Error(`${what} must be a loopback address (127.0.0.1, localhost, ::1), got ${host}`);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
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
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function ready(url: string): Promise<boolean> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3_000) });
  await res.arrayBuffer();
  return res.status === 200;
}

async function hasPollers(client: Client, namespace: string, taskQueue: string): Promise<boolean> {
  const r = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: 1 /* WORKFLOW */,
  });
  return (r.pollers?.length ?? 0) > 0;
}

/** Drops the benchmark's database `url` names (it must be one of the benchmark's own). */
export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  if (!name.startsWith('stockhold_bench')) throw new Error(`refusing to drop ${name}: not a benchmark database`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const pg = new PgClient({ connectionString: admin.toString() });
  await pg.connect();
  try {
    await pg.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await pg.end();
  }
}

/**
 * Marks fresh, empty counters as loaded (as a rebuild would once done): the database is new too,
 * so they are complete, and /readyz (which waits for the marker) need not wait for a rebuild.
 */
async function markLoaded(target: string): Promise<void> {
  const redis = createRedis(
    target.includes('://')
      ? target
      : target.split(',').map((seed) => ({ host: seed.split(':')[0]!, port: Number(seed.split(':')[1]) })),
  );
  try {
    await redis.set(keys.loaded, 'benchmark: fresh stores');
  } finally {
    await redis.quit().catch(() => undefined);
  }
}

/** Drops and recreates the benchmark's database, then applies the service's migrations. */
async function freshDatabase(url: string): Promise<void> {
  await dropDatabase(url);
  await migrate(url);
}

/**
 * Where the own stack keeps its state: RAM (/dev/shm) when there is one, so the Temporal dev
 * server's SQLite file measures Temporal and not this machine's disk flushes (the reference
 * workflow runs on the same server, so both sides get the same storage).
 */
function stateBase(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

export async function startOwnStack(opts: { logLevel: string; profileDir?: string }): Promise<Target> {
  for (const entry of [path.join(LIB, 'worker.js'), path.join(LIB, 'api', 'server.js')]) {
    if (!existsSync(entry))
      throw new Error(
        `${path.relative(PROJECT_ROOT, entry)} not found: run \`npm run build\` first (\`npm run bench\` does)`,
      );
  }
  const temp = mkdtempSync(path.join(stateBase(), 'stockhold-bench-'));
  const closers: (() => Promise<void>)[] = [];
  const close = async (keepLogs = false) => {
    for (const closer of closers.reverse()) await closer().catch(() => undefined);
    closers.length = 0;
    if (keepLogs) {
      rmSync(path.join(temp, 'temporal.db'), { force: true });
      return temp;
    }
    rmSync(temp, { recursive: true, force: true });
    return undefined;
  };
  try {
    detail(`PostgreSQL ${BENCH_DATABASE_URL}: recreating and migrating`);
    await freshDatabase(BENCH_DATABASE_URL);
    detail(`Redis ${BENCH_REDIS_URL}: flushing`);
    const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: 1 });
    await redis.flushdb();
    await markLoaded(BENCH_REDIS_URL);
    closers.push(async () => {
      await redis.flushdb().catch(() => undefined);
      await redis.quit();
    });

    const [temporalPort, uiPort] = [await freePort(), await freePort()];
    const temporalAddress = `127.0.0.1:${temporalPort}`;
    const namespace = 'default';
    const temporalLog = path.join(temp, 'temporal.log');
    writeFileSync(temporalLog, '');
    detail(`Temporal dev server on ${temporalAddress} (state in ${temp})`);
    const dev: DevServer = await startDevServer({
      address: temporalAddress,
      namespace,
      dataDir: temp,
      uiPort,
      log: (line) => appendFileSync(temporalLog, `${line}\n`),
    });
    track(dev.process);
    closers.push(() => dev.stop());

    // Random, and long enough for the service's minimum token length (16 characters).
    const adminToken = `bench-admin-${randomBytes(12).toString('hex')}`;
    const clientToken = `bench-client-${randomBytes(12).toString('hex')}`;
    const taskQueue = 'stockhold-bench';
    const baseEnv = (port: number, logLevel: string): NodeJS.ProcessEnv => ({
      ...withoutStoreSettings(process.env),
      PORT: String(port),
      REDIS_URL: BENCH_REDIS_URL,
      DATABASE_URL: BENCH_DATABASE_URL,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
      INVENTORY_ADMIN_TOKEN: adminToken,
      INVENTORY_API_TOKEN: clientToken,
      LOG_LEVEL: logLevel,
    });
    const profileArgs = (name: string) =>
      opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir, '--cpu-prof-name', `${name}.cpuprofile`] : [];

    detail('worker: node lib/worker.js (bundling the workflows)');
    const worker = spawnNode(path.join(LIB, 'worker.js'), {
      env: baseEnv(0, 'warn'),
      logFile: path.join(temp, 'worker.log'),
      // The worker's workflows run in worker threads; with one fixed file name every thread's
      // profile would overwrite the others, so its profiles keep Node's default names (one file
      // per thread: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile) in a folder of their own.
      nodeArgs: opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(opts.profileDir, 'worker')] : [],
    });
    closers.push(() => worker.stop(15_000));
    const temporal = new Client({ connection: await Connection.connect({ address: temporalAddress }), namespace });
    closers.push(() => temporal.connection.close());
    await waitFor('the worker', 120_000, () => hasPollers(temporal, namespace, taskQueue), worker);

    const startApi = async (o: ApiOptions): Promise<ApiHandle> => {
      const port = await freePort();
      const api = spawnNode(path.join(LIB, 'api', 'server.js'), {
        env: baseEnv(port, o.logLevel ?? opts.logLevel),
        logFile: path.join(temp, `${o.name}.log`),
        // BENCH_API_NODE_ARGS: node flags for the API processes alone (an experiment with V8's
        // heap settings, say, that must not reach the references or the load generators).
        nodeArgs: [...profileArgs(o.name), ...(process.env.BENCH_API_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
      });
      const url = `http://127.0.0.1:${port}`;
      await waitFor(o.name, 60_000, () => ready(url), api);
      return { url, pid: api.pid, stop: () => api.stop() };
    };
    detail(`API: node lib/api/server.js (LOG_LEVEL=${opts.logLevel})`);
    const api = await startApi({ name: 'api' });
    closers.push(() => api.stop());

    return {
      own: true,
      url: api.url,
      adminToken,
      clientToken,
      temporalAddress,
      namespace,
      taskQueue,
      redisUrl: BENCH_REDIS_URL,
      benchRedisUrl: BENCH_REDIS_URL,
      benchDatabaseUrl: BENCH_DATABASE_URL,
      apiPid: api.pid,
      workerPid: worker.pid,
      temporalPid: dev.process.pid,
      logLevel: opts.logLevel,
      startApi: async (o) => {
        const extra = await startApi(o);
        closers.push(() => extra.stop());
        return extra;
      },
      startShape: async (o) => {
        const shapeQueue = `${taskQueue}-${o.name}`;
        const env = (port: number, logLevel: string): NodeJS.ProcessEnv => ({
          ...baseEnv(port, logLevel),
          DATABASE_URL: o.databaseUrl,
          TEMPORAL_TASK_QUEUE: shapeQueue,
          ...(o.redisClusterNodes ? { REDIS_CLUSTER_NODES: o.redisClusterNodes } : {}),
          ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}),
        });
        const lib = o.lib ?? LIB;
        detail(`${o.name}: PostgreSQL ${o.databaseUrl}: recreating and migrating`);
        await freshDatabase(o.databaseUrl);
        if (o.redisClusterNodes ?? o.redisUrl) await markLoaded((o.redisClusterNodes ?? o.redisUrl)!);
        const stops: (() => Promise<void>)[] = [() => dropDatabase(o.databaseUrl)];
        const stop = async () => {
          for (const s of stops.reverse()) await s().catch(() => undefined);
          stops.length = 0;
        };
        closers.push(stop);
        try {
          detail(
            `${o.name}: worker on task queue ${shapeQueue}${o.redisClusterNodes ? `, REDIS_CLUSTER_NODES=${o.redisClusterNodes}` : ''}`,
          );
          const w = spawnNode(path.join(lib, 'worker.js'), {
            env: env(0, 'warn'),
            logFile: path.join(temp, `${o.name}-worker.log`),
            nodeArgs: profileArgs(`${o.name}-worker`),
          });
          stops.push(() => w.stop(15_000));
          await waitFor(`the ${o.name} worker`, 120_000, () => hasPollers(temporal, namespace, shapeQueue), w);
          const apis: ApiHandle[] = [];
          for (let i = 1; i <= o.apis; i++) {
            const name = `${o.name}-api-${i}`;
            const port = await freePort();
            detail(
              `${o.name}: API ${i} of ${o.apis}: node ${path.relative(PROJECT_ROOT, lib)}/api/server.js on port ${port}`,
            );
            const p = spawnNode(path.join(lib, 'api', 'server.js'), {
              env: env(port, opts.logLevel),
              logFile: path.join(temp, `${name}.log`),
              nodeArgs: profileArgs(name),
            });
            stops.push(() => p.stop());
            const url = `http://127.0.0.1:${port}`;
            await waitFor(name, 60_000, () => ready(url), p);
            apis.push({ url, pid: p.pid, stop: () => p.stop() });
          }
          return {
            urls: apis.map((a) => a.url),
            apiPids: apis.map((a) => a.pid),
            workerPid: w.pid,
            taskQueue: shapeQueue,
            stop,
          };
        } catch (err) {
          await stop();
          throw err;
        }
      },
      close,
    };
  } catch (err) {
    await close(true).then((kept) => kept && detail(`logs kept in ${kept}`));
    throw err;
  }
}

/** A stack somebody else runs: the benchmark only sends it traffic (and starts its references). */
export async function useRunningStack(
  opts: Pick<
    Target,
    'url' | 'adminToken' | 'clientToken' | 'temporalAddress' | 'namespace' | 'taskQueue' | 'redisUrl'
  > & {
    apiPid?: number;
    workerPid?: number;
  },
): Promise<Target> {
  assertLoopback(opts.url, '--url');
  assertLoopback(opts.temporalAddress, '--temporal');
  assertLoopback(opts.redisUrl, '--redis-url');
  const url = opts.url.replace(/\/+$/, '');
  await waitFor(`the API at ${url}`, 10_000, () => ready(url));
  const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: 1 });
  await redis.ping();
  await redis.quit();
  await migrate(BENCH_DATABASE_URL);
  return {
    own: false,
    ...opts,
    url,
    benchRedisUrl: BENCH_REDIS_URL,
    benchDatabaseUrl: BENCH_DATABASE_URL,
    async close() {
      return undefined;
    },
  };
}
