import { DEFAULT_TASK_QUEUE } from './workflows/definitions';

/** Configuration from the environment (API.md, "Configuration"), read in one place. */
export interface Config {
  port: number;
  databaseUrl: string;
  redisUrl: string;
  temporalAddress: string;
  temporalNamespace: string;
  taskQueue: string;
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
}

export const DEV_ADMIN_TOKEN = 'dev-admin-token';
export const DEV_API_TOKEN = 'dev-api-token';

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const adminToken = env.INVENTORY_ADMIN_TOKEN || DEV_ADMIN_TOKEN;
  const apiToken = env.INVENTORY_API_TOKEN || DEV_API_TOKEN;
  const maxTtlSeconds = int(env, 'RESERVATION_MAX_TTL_SECONDS', 86_400, 1, 86_400 * 365);
  return {
    port: int(env, 'PORT', 3000, 0, 65_535),
    databaseUrl: env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/stockhold',
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    temporalAddress: env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
    temporalNamespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    adminToken,
    apiToken,
    devTokens: !env.INVENTORY_ADMIN_TOKEN && !env.INVENTORY_API_TOKEN,
    tokenSources: { admin: env.INVENTORY_ADMIN_TOKEN ? 'env' : 'dev', api: env.INVENTORY_API_TOKEN ? 'env' : 'dev' },
    ...(env.TEMPORAL_UI_URL ? { temporalUiUrl: env.TEMPORAL_UI_URL.replace(/\/+$/, '') } : {}),
    defaultTtlSeconds: int(env, 'RESERVATION_DEFAULT_TTL_SECONDS', 600, 1, maxTtlSeconds),
    maxTtlSeconds,
    logLevel: env.LOG_LEVEL || 'info',
  };
}
