/**
 * Scenario 5, memory: RSS of the API and the worker processes and Redis `used_memory`, before and
 * with 10,000 live holds (10,000 HELD reservations, i.e. 10,000 running workflows waiting on their
 * TTL timer, which the worker keeps cached). The holds are made through the API.
 *
 * BENCH_MEMORY_HOLDS sets the number of holds (default 10,000; a multiple of 10): 2,500 already fill
 * the worker's default cache of 1,000 workflows and take a minute or two, for comparing commits.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { LifecycleJob, LifecycleResult } from '../children/lifecycle';
import { createSku, getStock } from '../harness/api';
import { detail, progress } from '../harness/progress';
import { runJob } from '../harness/procs';
import { round2 } from '../harness/stats';
import { fmt, type Context, type Outcome, type Row } from './types';

const SKUS = 10;

function holdsFromEnv(value: string | undefined): number {
  if (value === undefined || value === '') return 10_000;
  const n = Number(value);
  if (!Number.isInteger(n) || n < SKUS || n % SKUS !== 0)
    throw new Error(`BENCH_MEMORY_HOLDS must be a positive multiple of ${SKUS}, got ${value}`);
  return n;
}

export interface MemoryData {
  apiRssMb: number | null;
  workerRssMb: number | null;
  redisUsedMb: number;
  liveHolds: number;
  before: { apiRssMb: number | null; workerRssMb: number | null; redisUsedMb: number };
  /** Redis used_memory is for the whole instance (other databases too): the delta is the holds'. */
  redisDeltaMb: number;
  holdsPerSecond: number;
}

export function rssMb(pid: number | undefined): number | null {
  if (!pid || pid < 0) return null;
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? round2(Number(match[1]) / 1024) : null;
  } catch {
    return null;
  }
}

async function redisUsedMb(url: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const info = await redis.info('memory');
    return round2(Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN) / 1024 / 1024);
  } finally {
    await redis.quit();
  }
}

export async function memory(ctx: Context): Promise<Outcome<MemoryData>> {
  const { target } = ctx;
  const holds = holdsFromEnv(process.env.BENCH_MEMORY_HOLDS);
  const skus = Array.from({ length: SKUS }, (_, i) => `MEM-${ctx.run}-${i}`);
  for (const sku of skus) await createSku(target, sku, holds / SKUS, 'memory benchmark');
  const before = {
    apiRssMb: rssMb(target.apiPid),
    workerRssMb: rssMb(target.workerPid),
    redisUsedMb: await redisUsedMb(target.redisUrl),
  };
  progress(
    `memory: before: API ${fmtMb(before.apiRssMb)}, worker ${fmtMb(before.workerRssMb)}, Redis used_memory ${fmt.mb(before.redisUsedMb)}; making ${fmt.int(holds)} live holds`,
  );

  const idPrefix = `m${ctx.run}`;
  const job: LifecycleJob = {
    mode: 'reserve',
    url: target.url,
    headers: { authorization: `Bearer ${target.clientToken}` },
    concurrency: 64,
    skus,
    idPrefix,
    ttlSeconds: 3_600,
    count: holds,
  };
  const made = await runJob<LifecycleResult>('lifecycle', job, {
    timeoutMs: 600_000,
    onProgress: (t) => detail(`holds: ${t}`),
  });
  detail(`holds: ${fmt.int(made.completed)} made in ${fmt.s(made.seconds)} (${made.rate.toFixed(0)}/s)`);
  const reserved = (await Promise.all(skus.map((sku) => getStock(target, sku)))).reduce((a, v) => a + v.reserved, 0);
  detail(`Redis shows ${fmt.int(reserved)} units reserved over ${SKUS} SKUs`);
  await new Promise((r) => setTimeout(r, 2_000));
  const data: MemoryData = {
    apiRssMb: rssMb(target.apiPid),
    workerRssMb: rssMb(target.workerPid),
    redisUsedMb: await redisUsedMb(target.redisUrl),
    liveHolds: reserved,
    before,
    redisDeltaMb: 0,
    holdsPerSecond: round2(made.rate),
  };
  data.redisDeltaMb = round2(data.redisUsedMb - before.redisUsedMb);
  detail(
    `with ${fmt.int(reserved)} holds: API ${fmtMb(data.apiRssMb)}, worker ${fmtMb(data.workerRssMb)}, Redis used_memory ${fmt.mb(data.redisUsedMb)} (+${fmt.mb(data.redisDeltaMb)})`,
  );

  if (!target.own) {
    detail(`cancelling the ${fmt.int(made.completed)} holds (a running stack keeps no benchmark leftovers)`);
    await runJob<LifecycleResult>('lifecycle', { ...job, mode: 'cancel' } satisfies LifecycleJob, {
      timeoutMs: 600_000,
      onProgress: (t) => detail(`cancel: ${t}`),
    });
  }
  const failure =
    reserved !== holds || made.completed !== holds
      ? `memory: ${made.completed} holds made, Redis shows ${reserved} reserved, expected ${holds}`
      : undefined;
  return { data, rows: memoryRows(data), failure };
}

const fmtMb = (v: number | null) => (v === null ? 'n/a' : fmt.mb(v));

export function memoryRows(d: MemoryData): Row[] {
  return [
    {
      scenario: 'memory',
      measure: `API RSS, ${fmt.int(d.liveHolds)} live holds`,
      value: fmtMb(d.apiRssMb),
      reference: `${fmtMb(d.before.apiRssMb)} before`,
    },
    {
      scenario: 'memory',
      measure: `worker RSS, ${fmt.int(d.liveHolds)} live holds`,
      value: fmtMb(d.workerRssMb),
      reference: `${fmtMb(d.before.workerRssMb)} before`,
    },
    {
      scenario: 'memory',
      measure: 'Redis used_memory',
      value: fmt.mb(d.redisUsedMb),
      reference: `${fmt.mb(d.before.redisUsedMb)} before`,
      ratio: `+${fmt.mb(d.redisDeltaMb)}`,
    },
  ];
}
