/**
 * A whole Stockhold stack in the test process: a real Temporal dev server (with the contract's
 * search attributes), a worker on a task queue of its own, and the Express API over the run's
 * Redis and PostgreSQL (TEST_REDIS_URL, TEST_DATABASE_URL), listening on 127.0.0.1 on a free port.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { createReconcilerActivities, type ReconcilerSettings } from '../../src/reconciler/activities';
import { createApp } from '../../src/api/app';
import { deploymentSources } from '../../src/api/metrics/deployment';
import { createMetrics } from '../../src/api/metrics/registry';
import { readinessChecks } from '../../src/api/readiness';
import { ReservationService } from '../../src/api/reservations/service';
import { createLogger } from '../../src/logger';
import { createStock, StockStore, type StockClients, type StockRedis } from '../../src/stock';
import { ensureReconciler } from '../../src/temporal/deployment';
import { ensureSearchAttributes } from '../../src/temporal/search-attributes';
import { expectConforming } from './conformance';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './env';
import { testStock } from './stock';
import { devServerEnv, installTestRuntime, taskQueue, workflowBundle } from './temporal';
import { freePort } from './redis-server';
import { WebhookStore } from '../../src/webhooks/store';

export const ADMIN_TOKEN = 'admin-secret';
export const CLIENT_TOKEN = 'client-secret';

// Quiet Temporal's core and worker logs: refused holds are expected here (errors still show).
installTestRuntime();

export interface ApiOptions {
  /** Bearer token; `null` sends no Authorization header. Defaults to the client token. */
  token?: string | null;
  /** A JSON body (serialised with JSON.stringify). */
  body?: unknown;
  /** A body sent as is (invalid JSON, a text body...); Content-Type stays application/json unless `headers` says otherwise. */
  rawBody?: string;
  headers?: Record<string, string>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ApiAnswer<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

/** One HTTP call to the API; the body is parsed as JSON when it is JSON. Throws when the answer does not match the OpenAPI document. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function request<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  options: ApiOptions = {},
): Promise<ApiAnswer<T>> {
  const token = options.token === undefined ? CLIENT_TOKEN : options.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  Object.assign(headers, options.headers ?? {});
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await res.text();
  expectConforming({ method, url: path, status: res.status, contentType: res.headers.get('content-type'), text });
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('application/json')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, body: parsed as T, text, headers: res.headers };
}

/** Faults a test can switch on (and must switch off again): they open real race windows. */
export interface Faults {
  /**
   * Awaited before each counter read of the API's reservation fast path (the pre-check script),
   * with the stock key of its first line: a gate the test holds shut until the moment it wants the
   * read to happen.
   */
  beforeCounterRead?: (key: string) => Promise<void>;
}

/** The Redis client the API's ReservationService uses: the real one, with `faults` applied. */
function withFaults(redis: StockRedis, faults: Faults): StockRedis {
  return new Proxy(redis, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (prop === 'stockPrecheck') {
        return async (...args: unknown[]) => {
          await faults.beforeCounterRead?.(String(args[1]));
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export interface Stack {
  url: string;
  /** The dev server's Web UI, with `ui: true`. */
  uiUrl?: string;
  env: TestWorkflowEnvironment;
  /** The stock clients the API and the worker use (TEST_REDIS_URL, TEST_DATABASE_URL). */
  stock: StockClients;
  taskQueue: string;
  server: Server;
  worker: Worker;
  faults: Faults;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  api<T = any>(method: string, path: string, options?: ApiOptions): Promise<ApiAnswer<T>>;
  /** The same with the admin token. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  admin<T = any>(method: string, path: string, options?: Omit<ApiOptions, 'token'>): Promise<ApiAnswer<T>>;
  close(): Promise<void>;
}

export interface StackOptions {
  /**
   * Runs the deployment's reconciler on the stack's worker (its activity, and reconcilerWorkflow
   * started on the stack's task queue as the API does) with these settings, and shows its counts
   * in /metrics. Off by default.
   */
  reconciler?: ReconcilerSettings;
  /** Stores of the stack's own instead of the run's (TEST_REDIS_URL, TEST_DATABASE_URL); a cluster's seeds win over the URL. */
  redisUrl?: string;
  redisClusterNodes?: { host: string; port: number }[];
  databaseUrl?: string;
  /** Runs the dev server's Web UI on a port of its own, and tells the app where it is (`uiUrl`). */
  ui?: boolean;
  /** METRICS_WATCHED_SKUS_MAX of the stack's API (the service's default, 50, when left out). */
  watchedSkusMax?: number;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const uiPort = options.ui ? await freePort() : undefined;
  const uiUrl = uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`;
  const env = await devServerEnv({ uiPort });
  const stock =
    options.redisUrl || options.redisClusterNodes || options.databaseUrl
      ? createStock({
          redisUrl: options.redisUrl ?? TEST_REDIS_URL,
          ...(options.redisClusterNodes ? { redisClusterNodes: options.redisClusterNodes } : {}),
          databaseUrl: options.databaseUrl ?? TEST_DATABASE_URL,
        })
      : testStock();
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let server: Server | undefined;
  const close = async () => {
    if (server) {
      const s = server;
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeAllConnections();
      await closed;
    }
    if (worker && worker.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => undefined);
    await env.teardown();
    await stock.close();
  };
  try {
    await ensureSearchAttributes(env.client, 'default');
    const queue = taskQueue('api');
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: queue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...createActivities(stock.stock),
        ...(options.reconciler
          ? createReconcilerActivities({
              stock: stock.stock,
              temporal: env.client,
              logger: createLogger('silent'),
              settings: options.reconciler,
            })
          : {}),
      },
      shutdownGraceTime: '2 seconds',
    });
    running = worker.run();
    if (options.reconciler) await ensureReconciler(env.client, queue);
    const faults: Faults = {};
    const webhooks = new WebhookStore(stock.db);
    const app = createApp({
      config: {
        adminToken: ADMIN_TOKEN,
        apiToken: CLIENT_TOKEN,
        maxTtlSeconds: 86_400,
        temporalNamespace: 'default',
        ...(uiUrl ? { temporalUiUrl: uiUrl } : {}),
        ...(options.watchedSkusMax === undefined ? {} : { metricsWatchedSkusMax: options.watchedSkusMax }),
      },
      stock: stock.stock,
      webhooks,
      reservations: new ReservationService(env.client, new StockStore(withFaults(stock.redis, faults), stock.db), {
        taskQueue: queue,
        defaultTtlSeconds: 600,
        maxTtlSeconds: 86_400,
      }),
      metrics: createMetrics(deploymentSources(stock.stock, webhooks, { reconciler: Boolean(options.reconciler) })),
      logger: createLogger('silent'),
      checks: readinessChecks(stock, env.client, 'default', queue),
    });
    server = await new Promise<Server>((resolve, reject) => {
      // A deep accept queue: a test opens a couple of thousand connections at once.
      const s = app.listen(0, '127.0.0.1', 4_096, () => resolve(s)).on('error', reject);
    });
    // As the service does (src/api/server.ts): idle keep-alive connections outlive the client's,
    // so a client never reuses a connection the server is just closing (ECONNRESET under load).
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      url,
      uiUrl,
      env,
      stock,
      taskQueue: queue,
      server,
      worker,
      faults,
      api: (method, path, options) => request(url, method, path, options),
      admin: (method, path, options) => request(url, method, path, { ...options, token: ADMIN_TOKEN }),
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/** Polls `probe` until `done` holds (at most `timeoutMs`), returning the last value either way. */
export async function pollUntil<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
  intervalMs = 200,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
