/**
 * The service's configuration from the environment (docs/API.md "Configuration"): every variable
 * checked at start, with a message naming the one that is wrong (exit code EX_CONFIG).
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { EXIT_CONFIG } from './processes/messages';
import { DEFAULT_TASK_QUEUE } from './workflows/definitions';

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
  /** The reconciler (src/reconciler/activities.ts): scan interval, grace period, rebuild settle time (ms). */
  reconcile: { intervalMs: number; graceMs: number; rebuildSettleMs: number };
  /** Webhook delivery (src/webhooks/activities.ts): how long a receiver has to answer (ms, at most the contract's 10 s). */
  webhooks: { timeoutMs: number; retryDelaysMs?: number[] };
  /** How many SKUs an admin may watch at once: each has stock gauges in /metrics (METRICS_WATCHED_SKUS_MAX). */
  metricsWatchedSkusMax: number;
}

/**
 * TLS to Temporal. The files are read when the configuration is loaded, so a wrong path stops the
 * service at start with the variable's name rather than at its first connection attempt; the
 * paths are kept for the Temporal CLI, which takes paths (src/cli/search-attributes.ts).
 */
export interface TemporalTls {
  /** mTLS client certificate and its private key (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY). */
  clientCert?: { certPath: string; keyPath: string; crt: Buffer; key: Buffer };
  /** The CA that signed the server's certificate (TEMPORAL_TLS_CA), when the system's CAs do not. */
  serverCa?: { path: string; pem: Buffer };
  /** The name checked against the server's certificate, and sent as SNI (TEMPORAL_TLS_SERVER_NAME). */
  serverName?: string;
}

/** The Temporal part of the configuration: all a Temporal client needs (the payment example, the scripts). */
export type TemporalConfig = Pick<Config, 'temporalAddress' | 'temporalNamespace' | 'temporalTls' | 'temporalApiKey' | 'taskQueue'>;

/** A configuration the service refuses to start with; its message names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
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

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** WEBHOOK_RETRY_DELAYS_MS: `ms,ms,…`, the waits after the 1st, 2nd… failed attempt (for tests; the default is the contract's schedule). */
function retryDelaysOf(env: NodeJS.ProcessEnv): { retryDelaysMs?: number[] } {
  const raw = env.WEBHOOK_RETRY_DELAYS_MS?.trim();
  if (!raw) return {};
  const delays = raw.split(',').map(Number);
  if (delays.some((d) => !Number.isInteger(d) || d < 0 || d > 3_600_000)) {
    throw new ConfigError(`WEBHOOK_RETRY_DELAYS_MS must be integers in 0..3600000 separated by commas, got ${JSON.stringify(raw)}`);
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
    if (!match || port < 1 || port > 65_535) throw new ConfigError(`REDIS_CLUSTER_NODES must be host:port[,host:port…], got ${JSON.stringify(entry)}`);
    return { host: match[1]!, port };
  });
  return { redisClusterNodes: nodes };
}

/** TEMPORAL_TLS: `true`/`false` (also 1/0, yes/no); unset is neither, and TLS follows the other settings. */
function booleanOf(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return undefined;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

/** The file a variable names, read now: an unreadable one refuses the start, naming the variable. */
function fileOf(name: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : String((err as Error).message);
    throw new ConfigError(`${name} names a file that cannot be read: ${file} (${why})`);
  }
}

/**
 * TLS and the API key for Temporal. What the SDK would only report at the first connection, as a
 * bare handshake failure, is refused here by variable name: half an mTLS pair, an unreadable or
 * non-PEM file, a key that does not belong to the certificate, and TEMPORAL_TLS=false next to
 * settings that only make sense with TLS (an API key sent in clear text would be readable by
 * anyone on the path). An API key together with an mTLS pair is accepted: the SDK (1.24, client
 * and worker alike) sends both, the certificate in the handshake and the key as a header, and
 * the server checks whichever its namespace is set up for.
 */
function temporalSecurityOf(env: NodeJS.ProcessEnv): Pick<Config, 'temporalTls' | 'temporalApiKey'> {
  const forced = booleanOf(env, 'TEMPORAL_TLS');
  const apiKey = env.TEMPORAL_API_KEY?.trim() || undefined;
  if (apiKey !== undefined && !/^[\x21-\x7e]+$/.test(apiKey)) {
    throw new ConfigError('TEMPORAL_API_KEY must be printable ASCII without spaces (it travels in an Authorization header)');
  }
  const certPath = env.TEMPORAL_TLS_CERT?.trim() || undefined;
  const keyPath = env.TEMPORAL_TLS_KEY?.trim() || undefined;
  const caPath = env.TEMPORAL_TLS_CA?.trim() || undefined;
  const serverName = env.TEMPORAL_TLS_SERVER_NAME?.trim() || undefined;
  if (certPath && !keyPath) throw new ConfigError('TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not: mTLS needs the client certificate and its private key');
  if (keyPath && !certPath) throw new ConfigError('TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not: mTLS needs the client certificate and its private key');
  if (serverName !== undefined && !/^[A-Za-z0-9.-]+$/.test(serverName)) {
    throw new ConfigError(`TEMPORAL_TLS_SERVER_NAME must be a host name, got ${JSON.stringify(serverName)}`);
  }
  if (forced === false) {
    const needsTls = [
      ['TEMPORAL_API_KEY', apiKey, ' (the key would travel in clear text)'],
      ['TEMPORAL_TLS_CERT', certPath, ''],
      ['TEMPORAL_TLS_CA', caPath, ''],
      ['TEMPORAL_TLS_SERVER_NAME', serverName, ''],
    ].find(([, value]) => value !== undefined);
    if (needsTls) throw new ConfigError(`TEMPORAL_TLS=false contradicts ${needsTls[0]}, which needs TLS${needsTls[2]}: unset one of them`);
  }

  const tls: TemporalTls = {};
  if (certPath && keyPath) {
    const crt = fileOf('TEMPORAL_TLS_CERT', certPath);
    const key = fileOf('TEMPORAL_TLS_KEY', keyPath);
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(crt);
    } catch {
      throw new ConfigError(`TEMPORAL_TLS_CERT (${certPath}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
    let privateKey: ReturnType<typeof createPrivateKey>;
    try {
      privateKey = createPrivateKey(key);
    } catch {
      throw new ConfigError(`TEMPORAL_TLS_KEY (${keyPath}) holds no unencrypted PEM private key (-----BEGIN … PRIVATE KEY-----)`);
    }
    if (!certificate.checkPrivateKey(privateKey)) {
      throw new ConfigError(`TEMPORAL_TLS_KEY (${keyPath}) is not the private key of the certificate in TEMPORAL_TLS_CERT (${certPath})`);
    }
    tls.clientCert = { certPath, keyPath, crt, key };
  }
  if (caPath) {
    const pem = fileOf('TEMPORAL_TLS_CA', caPath);
    try {
      new X509Certificate(pem);
    } catch {
      throw new ConfigError(`TEMPORAL_TLS_CA (${caPath}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
    tls.serverCa = { path: caPath, pem };
  }
  if (serverName) tls.serverName = serverName;
  // TLS is on when asked for, or when anything configured needs it (an API key: as the SDK does).
  const tlsOn = forced ?? (apiKey !== undefined || Object.keys(tls).length > 0);
  return { ...(tlsOn ? { temporalTls: tls } : {}), ...(apiKey !== undefined ? { temporalApiKey: apiKey } : {}) };
}

/** The Temporal settings alone (no tokens, no stores): for clients that are not the service. */
export function loadTemporalConfig(env: NodeJS.ProcessEnv = process.env): TemporalConfig {
  return {
    temporalAddress: env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
    temporalNamespace: env.TEMPORAL_NAMESPACE || 'default',
    ...temporalSecurityOf(env),
    taskQueue: env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE,
  };
}

/** At least this many characters in a configured token. */
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
      throw new ConfigError('INVENTORY_ADMIN_TOKEN and INVENTORY_API_TOKEN must both be set when NODE_ENV=production (the development tokens are public)');
    }
    return { adminToken: DEV_ADMIN_TOKEN, apiToken: DEV_API_TOKEN, devTokens: true, tokenSources: { admin: 'dev', api: 'dev' } };
  }
  for (const [name, value] of [
    ['INVENTORY_ADMIN_TOKEN', admin],
    ['INVENTORY_API_TOKEN', api],
  ] as const) {
    if (value === '') throw new ConfigError(`${name} is not set: set both INVENTORY_ADMIN_TOKEN and INVENTORY_API_TOKEN, or neither (development tokens)`);
    if (value.length < MIN_TOKEN_LENGTH) throw new ConfigError(`${name} must be at least ${MIN_TOKEN_LENGTH} characters`);
    if (!/^[\x21-\x7e]+$/.test(value)) throw new ConfigError(`${name} must be printable ASCII without spaces (it travels in an Authorization header)`);
  }
  if (admin === api) throw new ConfigError('INVENTORY_ADMIN_TOKEN and INVENTORY_API_TOKEN must differ: with equal tokens every client is an admin');
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
