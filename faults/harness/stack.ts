/**
 * One whole stack for a fault run: the three stores the harness owns, the service's two
 * processes over them, and the harness's own instruments (HTTP client and recorder, what clients
 * heard, the Redis sampler). Everything is registered for clean-up (procs.ts).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { Sampler } from './checks';
import { Http, Recorder } from './http';
import { onCleanUp } from './procs';
import { Service, snapshotService } from './service';
import { PostgresStore, RedisStore, TemporalStore } from './stores';
import { DEFAULT_WORKLOAD, Tracker, Workload, type WorkloadOptions } from './workload';

export interface Stack {
  redis: RedisStore;
  pg: PostgresStore;
  temporal: TemporalStore;
  service: Service;
  recorder: Recorder;
  http: Http;
  tracker: Tracker;
  workload: Workload;
  sampler: Sampler;
  /** The harness's Temporal client, reconnected after a restart of the server. */
  temporalClient(): Promise<Client>;
  logDir: string;
}

export interface StackOptions {
  /** Where the service's and the stores' logs go (kept after the run). */
  logDir: string;
  workload?: WorkloadOptions;
  /** Extra environment for the service's processes. */
  serviceEnv?: NodeJS.ProcessEnv;
  log?: (msg: string) => void;
  /** Run the service of this git revision (compiled afresh) instead of lib/. */
  rev?: string;
}

/** A scratch folder for the Temporal state file, in RAM when there is some; removed at the end. */
function scratchDir(): string {
  let base = os.tmpdir();
  try {
    mkdirSync('/dev/shm', { recursive: true });
    base = '/dev/shm';
  } catch {
    // no /dev/shm
  }
  const dir = mkdtempSync(path.join(base, 'stockhold-faults-'));
  onCleanUp(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? (() => undefined);
  mkdirSync(options.logDir, { recursive: true });
  const lib = snapshotService(options.rev);
  const scratch = scratchDir();
  log('starting redis-server, PostgreSQL 15 and the Temporal dev server…');
  const [redis, pg, temporal] = await Promise.all([
    RedisStore.start(),
    PostgresStore.start(),
    TemporalStore.start(scratch, options.logDir),
  ]);
  log(
    `stores: redis ${redis.url} (pid ${redis.pid}), PostgreSQL ${pg.url}, Temporal ${temporal.address} (pid ${temporal.pid})`,
  );
  const service = new Service(lib, {
    redisUrl: redis.url,
    databaseUrl: pg.url,
    temporalAddress: temporal.address,
    logDir: options.logDir,
    env: options.serviceEnv,
  });
  await service.migrate();
  log('migrated; starting the worker and the API (node lib/worker.js, node lib/api/server.js)…');
  await service.start();
  const recorder = new Recorder();
  const http = new Http(() => service.url, { admin: service.adminToken, client: service.clientToken }, recorder);
  const tracker = new Tracker();
  const temporalClient = () => temporal.client();
  const workload = new Workload(http, temporalClient, tracker, options.workload ?? DEFAULT_WORKLOAD);
  const sampler = new Sampler(redis.client, pg.pool, tracker, () => recorder.phase);
  sampler.start();
  onCleanUp(() => sampler.stop());
  onCleanUp(() => workload.stop());
  log(`service up: API ${service.url} (pid ${service.api.proc?.pid}), worker pid ${service.worker.proc?.pid}`);
  return {
    redis,
    pg,
    temporal,
    service,
    recorder,
    http,
    tracker,
    workload,
    sampler,
    temporalClient,
    logDir: options.logDir,
  };
}
