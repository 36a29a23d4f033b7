/**
 * The three stores the service runs against, each owned by the harness so it can be broken:
 * a private redis-server (test/helpers/redis-server.ts) that can be flushed, frozen, or killed and
 * started again empty on the same port; a private PostgreSQL 15 cluster
 * (test/helpers/postgres-cluster.ts) that can be crashed (`pg_ctl -m immediate stop`) and started
 * again; and a Temporal dev server whose state is a SQLite file, so `kill -9` and the same command
 * again bring back every workflow and timer. The harness's own clients to them (for checks and
 * fault injection) time out quickly, so a frozen store never hangs the harness.
 */
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import { startPostgresCluster, type PostgresCluster } from '../../test/helpers/postgres-cluster';
import { freePort, startRedisServer, type RedisServer } from '../../test/helpers/redis-server';
import { searchAttributeFlags } from '../../src/temporal/dev-server';
import { TEMPORAL_CLI } from '../../src/paths';
import { assertNotStopping, onCleanUp, sleep, spawnManaged, type Managed } from './procs';
import { openSync, closeSync } from 'node:fs';

export const DATABASE = 'stockhold';
/** The application_name of the harness's own PostgreSQL connections, so a fault aimed at the service's transactions leaves them out. */
export const HARNESS_APPLICATION_NAME = 'stockhold-faults';
export const NAMESPACE = 'default';

/** The private Redis node: restartable on its port, freezable. */
export class RedisStore {
  private node!: RedisServer;
  /** The harness's client: 1.5 s per command, so a frozen node only fails a probe. */
  readonly client: Redis;
  private constructor(readonly port: number) {
    this.client = new Redis(`redis://127.0.0.1:${port}`, {
      maxRetriesPerRequest: 1,
      commandTimeout: 1_500,
      connectTimeout: 1_500,
      retryStrategy: () => 200,
      enableOfflineQueue: true,
    });
    this.client.on('error', () => undefined);
  }

  static async start(): Promise<RedisStore> {
    const port = await freePort();
    const store = new RedisStore(port);
    store.node = await startRedisServer({ port });
    onCleanUp(() => store.stop());
    return store;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.node.pid;
  }

  /** `kill -9`, then a new empty node on the same port (no persistence: everything is gone). */
  async killAndRestartEmpty(): Promise<void> {
    this.node.kill('SIGCONT');
    this.node.kill('SIGKILL');
    await this.node.exited;
    for (let attempt = 1; ; attempt++) {
      assertNotStopping('redis-server');
      try {
        this.node = await startRedisServer({ port: this.port });
        return;
      } catch (err) {
        if (attempt >= 10) throw err;
        await sleep(300);
      }
    }
  }

  freeze(): void {
    this.node.kill('SIGSTOP');
  }

  thaw(): void {
    this.node.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.client.disconnect();
    await this.node?.stop();
  }
}

/** The private PostgreSQL cluster and the harness's pool on it. */
export class PostgresStore {
  readonly pool: Pool;
  private constructor(readonly cluster: PostgresCluster) {
    this.pool = new Pool({
      connectionString: cluster.url(DATABASE),
      application_name: HARNESS_APPLICATION_NAME,
      max: 4,
      connectionTimeoutMillis: 3_000,
      query_timeout: 15_000,
      idleTimeoutMillis: 5_000,
    });
    this.pool.on('error', () => undefined);
  }

  static async start(): Promise<PostgresStore> {
    const cluster = await startPostgresCluster();
    const store = new PostgresStore(cluster);
    onCleanUp(() => store.stop());
    return store;
  }

  get url(): string {
    return this.cluster.url(DATABASE);
  }

  async stop(): Promise<void> {
    await this.pool.end().catch(() => undefined);
    await this.cluster.stop();
  }
}

/** The Temporal dev server, restartable on its state file. */
export class TemporalStore {
  private proc!: Managed;
  private client_?: Client;
  private constructor(
    readonly port: number,
    readonly dbFile: string,
    readonly logFile: string,
  ) {}

  static async start(dir: string, logDir: string): Promise<TemporalStore> {
    const store = new TemporalStore(await freePort(), path.join(dir, 'temporal.db'), path.join(logDir, 'temporal.log'));
    onCleanUp(() => store.stop());
    await store.launch();
    return store;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async launch(): Promise<void> {
    const args = [
      'server',
      'start-dev',
      '--headless',
      '--ip',
      '127.0.0.1',
      '--port',
      String(this.port),
      '--namespace',
      NAMESPACE,
      '--db-filename',
      this.dbFile,
      '--log-level',
      'error',
      '--log-format',
      'text',
      ...searchAttributeFlags(),
    ];
    const fd = openSync(this.logFile, 'a');
    this.proc = spawnManaged('temporal', TEMPORAL_CLI, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    await this.waitServing(60_000);
  }

  /** Waits until the frontend answers and the namespace is there. */
  async waitServing(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (!this.proc.running()) throw new Error(`the Temporal dev server exited (see ${this.logFile})`);
      try {
        const connection = await Connection.connect({ address: this.address, connectTimeout: 1_000 });
        try {
          await connection.workflowService.describeNamespace({ namespace: NAMESPACE });
          return;
        } finally {
          await connection.close();
        }
      } catch (err) {
        if (Date.now() > until) throw err;
      }
      await sleep(250);
    }
  }

  /** The harness's client (payment signals, visibility listings). */
  async client(): Promise<Client> {
    this.client_ ??= new Client({
      connection: await Connection.connect({ address: this.address, connectTimeout: 5_000 }),
      namespace: NAMESPACE,
    });
    return this.client_;
  }

  /** `kill -9`, then the same command on the same state file. */
  async killAndRestart(): Promise<void> {
    this.proc.signal('SIGKILL');
    await this.proc.exited;
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.client_?.connection.close().catch(() => undefined);
    this.client_ = undefined;
    await this.proc?.stop(5_000);
  }
}
