/**
 * The service's configuration from the environment (docs/API.md "Configuration"): every variable
 * checked at start, with a message naming the one that is wrong (exit code EX_CONFIG).
 */
import { EXIT_CONFIG } from '../processes/messages';
import { booleanOf, ConfigError, int } from './env';
import { loadTemporalConfig, type TemporalTls } from './temporal';

export { ConfigError } from './env';
export { loadTemporalConfig, type TemporalConfig, type TemporalTls } from './temporal';

/** Configuration from the environment (API.md, "Configuration"), read in one place. */
export interface Config {
  port: number;
  databaseUrl: string;
  redisUrl: string;
  /** Redis Cluster seed nodes (REDIS_CLUSTER_NODES=host:port,…); when set it wins over redisUrl. */
  redisClusterNodes?: { host: string; port: number }[];
  temporalAddress: string;
  temporalNamespace: string;
  /** TLS to Temporal (Temporal Cloud, a self-hosted cluster); absent: plaintext, as to the dev server. */
  temporalTls?: TemporalTls;
  /** Temporal API key (TEMPORAL_API_KEY), sent as `Authorization: Bearer …`; implies TLS. */
  temporalApiKey?: string;
  taskQueue: string;
  /** How many API processes `npm start` runs, sharing the port (API_PROCESSES, 1..64). */
  apiProcesses: number;
  /** How many worker processes `npm start` runs (WORKER_PROCESSES, 1..64). */
  workerProcesses: number;
  adminToken: string;
  apiToken: string;
  /** True when the tokens are the built-in development ones (none configured). */
  devTokens: boolean;
  /** Where each token comes from: the environment, or the public development default. */
  tokenSources: { admin: 'env' | 'dev'; api: 'env' | 'dev' };
  /** The Temporal Web UI of a server the service did not start (TEMPORAL_UI_URL), if known. */
  temporalUiUrl?: string;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  logLevel: string;
  /** Workflows a worker keeps in memory (≈150 KB each); evicted ones replay their short history. */
  workerMaxCachedWorkflows: number;
  /** The worker's slots and threads (src/temporal/worker-settings.ts), each from its WORKER_* variable. */
  workerTuning: WorkerTuning;
  /** The reconciler (src/reconciler/activities.ts): scan interval, grace period, rebuild settle time (ms). */
  reconcile: { intervalMs: number; graceMs: number; rebuildSettleMs: number };
  /** Webhook delivery (src/webhooks/activities.ts): how long a receiver has to answer (ms, at most the contract's 10 s). */
  webhooks: { timeoutMs: number; retryDelaysMs?: number[] };
  /** How many SKUs an admin may watch at once: each has stock gauges in /metrics (METRICS_WATCHED_SKUS_MAX). */
  metricsWatchedSkusMax: number;
}

/** Reads the configuration, or ends the process with the reason (no stack: it is the operator's to fix). */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`Stockhold cannot start: ${err.message}`);
    process.exit(EXIT_CONFIG);
  }
}

export const DEV_ADMIN_TOKEN = 'dev-admin-token';
export const DEV_API_TOKEN = 'dev-api-token';

/** WEBHOOK_RETRY_DELAYS_MS: `ms,ms,…`, the waits after the 1st, 2nd… failed attempt (for tests; the default is the contract's schedule). */
function retryDelaysOf(env: NodeJS.ProcessEnv): { retryDelaysMs?: number[] } {
  const raw = env.WEBHOOK_RETRY_DELAYS_MS?.trim();
  if (!raw) return {};
  const delays = raw.split(',').map(Number);
  if (delays.some((d) => !Number.isInteger(d) || d < 0 || d > 3_600_000)) {
    throw new ConfigError(
      `WEBHOOK_RETRY_DELAYS_MS must be integers in 0..3600000 separated by commas, got ${JSON.stringify(raw)}`,
    );
  }
  return { retryDelaysMs: delays };
}

/** REDIS_CLUSTER_NODES: `host:port,host:port,…` (seed nodes; the cluster tells the rest). */
function clusterNodesOf(env: NodeJS.ProcessEnv): Pick<Config, 'redisClusterNodes'> {
  const raw = env.REDIS_CLUSTER_NODES?.trim();
  if (!raw) return {};
  const nodes = raw.split(',').map((entry) => {
    const match = /^\s*([^\s:]+):(\d{1,5})\s*$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65_535)
      throw new ConfigError(`REDIS_CLUSTER_NODES must be host:port[,host:port…], got ${JSON.stringify(entry)}`);
    return { host: match[1]!, port };
  });
  return { redisClusterNodes: nodes };
}

export const MIN_TOKEN_LENGTH = 16;

/**
 * The two bearer tokens: both from the environment (distinct, long enough), or, for local
 * development only, neither (then the public development tokens apply). Anything else would leave
 * a door open (a public admin token, or every client an admin), so it refuses to start.
 */
function tokensOf(env: NodeJS.ProcessEnv): Pick<Config, 'adminToken' | 'apiToken' | 'devTokens' | 'tokenSources'> {
  const admin = env.INVENTORY_ADMIN_TOKEN ?? '';
  const api = env.INVENTORY_API_TOKEN ?? '';
  if (admin === '' && api === '') {
    if (env.NODE_ENV === 'production') {
      throw new ConfigError(
        'INVENTORY_ADMIN_TOKEN and INVENTORY_API_TOKEN must both be set when NODE_ENV=production (the development tokens are public)',
      );
    }
    return {
      adminToken: DEV_ADMIN_TOKEN,
      apiToken: DEV_API_TOKEN,
      devTokens: true,
      tokenSources: { admin: 'dev', api: 'dev' },
    };
  }
  for (const [name, value] of [
    ['INVENTORY_ADMIN_TOKEN', admin],
    ['INVENTORY_API_TOKEN', api],
  ] as const) {
    if (value === '')
      throw new ConfigError(
        `${name} is not set: set both INVENTORY_ADMIN_TOKEN and INVENTORY_API_TOKEN, or neither (development tokens)`,
      );
    if (value.length < MIN_TOKEN_LENGTH)
      throw new ConfigError(`${name} must be at least ${MIN_TOKEN_LENGTH} characters`);
    if (!/^[\x21-\x7e]+$/.test(value))
      throw new ConfigError(`${name} must be printable ASCII without spaces (it travels in an Authorization header)`);
  }
  if (admin === api)
    throw new ConfigError(
      'INVENTORY_ADMIN_TOKEN and INVENTORY_API_TOKEN must differ: with equal tokens every client is an admin',
    );
  return { adminToken: admin, apiToken: api, devTokens: false, tokenSources: { admin: 'env', api: 'env' } };
}

/** The configuration from the environment; throws a message naming the variable when it is wrong. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const maxTtlSeconds = int(env, 'RESERVATION_MAX_TTL_SECONDS', 86_400, 1, 86_400 * 365);
  return {
    port: int(env, 'PORT', 3000, 0, 65_535),
    databaseUrl: env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/stockhold',
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    ...clusterNodesOf(env),
    ...loadTemporalConfig(env),
    // One of each by default: a laptop; more where there are cores (the API is stateless, and
    // what must happen once per deployment runs as one Temporal workflow, not per process).
    apiProcesses: int(env, 'API_PROCESSES', 1, 1, 64),
    workerProcesses: int(env, 'WORKER_PROCESSES', 1, 1, 64),
    ...tokensOf(env),
    ...(env.TEMPORAL_UI_URL ? { temporalUiUrl: env.TEMPORAL_UI_URL.replace(/\/+$/, '') } : {}),
    defaultTtlSeconds: int(env, 'RESERVATION_DEFAULT_TTL_SECONDS', 600, 1, maxTtlSeconds),
    maxTtlSeconds,
    logLevel: env.LOG_LEVEL || 'info',
    workerMaxCachedWorkflows: int(env, 'WORKER_MAX_CACHED_WORKFLOWS', 1_000, 0, 1_000_000),
    workerTuning: workerTuningOf(env),
    reconcile: {
      // Often: after a partial loss, Redis may promise stock until the next comparison.
      intervalMs: int(env, 'RECONCILE_INTERVAL_MS', 2_000, 100, 3_600_000),
      // Longer than the longest hold, commit or release attempt (10 s): work in flight is never repaired.
      graceMs: int(env, 'RECONCILE_GRACE_MS', 15_000, 0, 3_600_000),
      // Longer than a hold attempt (5 s): holds that reached Redis before a loss have their row by then.
      rebuildSettleMs: int(env, 'REBUILD_SETTLE_MS', 6_000, 0, 600_000),
    },
    // The contract gives a receiver 10 s; shorter only for tests (WEBHOOK_TIMEOUT_MS).
    webhooks: { timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 10_000), ...retryDelaysOf(env) },
    // Four series per watched SKU: a few hundred series at most by default.
    metricsWatchedSkusMax: int(env, 'METRICS_WATCHED_SKUS_MAX', 50, 0, 1_000),
  };
}

/** The worker's slots and threads; the defaults are the SDK's, except activity slots (200 each). */
export interface WorkerTuning {
  maxConcurrentWorkflowTaskExecutions: number;
  maxConcurrentActivityTaskExecutions: number;
  maxConcurrentLocalActivityExecutions: number;
  /** One V8 context shared by the cached workflows (the SDK's default), or one each. */
  reuseV8Context: boolean;
  /** Threads running workflow activations (the SDK's default: 1 with a shared context, else 2). */
  workflowThreadPoolSize: number;
}

function workerTuningOf(env: NodeJS.ProcessEnv): WorkerTuning {
  const reuseV8Context = booleanOf(env, 'WORKER_REUSE_V8_CONTEXT') ?? true;
  return {
    maxConcurrentWorkflowTaskExecutions: int(env, 'WORKER_MAX_CONCURRENT_WORKFLOW_TASKS', 40, 2, 10_000),
    maxConcurrentActivityTaskExecutions: int(env, 'WORKER_MAX_CONCURRENT_ACTIVITIES', 200, 1, 10_000),
    maxConcurrentLocalActivityExecutions: int(env, 'WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES', 200, 1, 10_000),
    reuseV8Context,
    workflowThreadPoolSize: int(env, 'WORKER_THREAD_POOL_SIZE', reuseV8Context ? 1 : 2, 1, 64),
  };
}
