/**
 * Scenario: holds per second through the stock module on a single Redis and on a Redis Cluster,
 * side by side in one run. It runs `npm run bench:holds`'s program (bench/stock-holds.ts) as a
 * separate process on private Redis servers of its own (one node, and a 3-master cluster, from
 * the system redis-server) and a database of its own, and reads the figures it writes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HoldsFigures } from '../stock-holds';
import { detail, progress } from '../harness/progress';
import { spawnNode, tailOf } from '../harness/procs';
import { dropDatabase } from '../harness/stack';
import { fmt, type Context, type Outcome, type Row } from './types';

export type HoldsData = HoldsFigures;

const PROGRAM = path.resolve(__dirname, '..', 'stock-holds.js');
/**
 * Its own database, not the stack's: the stack's reconciler would see the program's HELD rows
 * (no workflow behind them) and release them as orphans after its grace period.
 */
const HOLDS_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/stockhold_bench_holds';

export async function holds(ctx: Context): Promise<Outcome<HoldsData>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stockhold-bench-holds-'));
  const out = path.join(dir, 'holds.json');
  const log = path.join(dir, 'holds.log');
  const roundMs = Math.round(1_500 * (ctx.seconds(3) / 3));
  progress(
    `holds: the stock module's hold on a single Redis and on a 3-master Redis Cluster (private servers), ${roundMs} ms rounds`,
  );
  try {
    await dropDatabase(HOLDS_DATABASE_URL);
    // The program's own private stores: no REDIS_URL / REDIS_CLUSTER_NODES of the caller's.
    const { REDIS_URL: _url, REDIS_CLUSTER_NODES: _nodes, ...env } = process.env;
    const child = spawnNode(PROGRAM, {
      env: { ...env, DATABASE_URL: HOLDS_DATABASE_URL, BENCH_HOLDS_JSON: out, BENCH_ROUND_MS: String(roundMs) },
      logFile: log,
    });
    const code = await new Promise<number | null>((resolve) => child.child.once('exit', (c) => resolve(c)));
    for (const line of tailOf(log, 40).split('\n')) detail(line);
    if (code !== 0) throw new Error(`bench/stock-holds exited with ${code}:\n${tailOf(log, 15)}`);
    const data = JSON.parse(readFileSync(out, 'utf8')) as HoldsData;
    return {
      data,
      rows: holdsRows(data),
      failure: data.consistent
        ? undefined
        : 'holds: the holds counted in Redis and PostgreSQL do not match what was held',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await dropDatabase(HOLDS_DATABASE_URL).catch(() => undefined);
  }
}

export function holdsRows(d: HoldsData): Row[] {
  const mode = (key: string) => d.modes.find((m) => m.key === key);
  const rows: Row[] = [];
  for (const [single, cluster, what] of [
    ['a', 'd', 'StockStore.hold (Redis + PostgreSQL row)'],
    ['c', 'e', 'hold.lua script command alone'],
  ] as const) {
    const s = mode(single);
    const c = mode(cluster);
    if (!s || !c) continue;
    rows.push({
      scenario: 'holds',
      measure: `${what}, ${d.concurrency} callers: Redis Cluster (3 masters) / single Redis`,
      value: `${fmt.int(c.median)} /s`,
      reference: `${fmt.int(s.median)} /s`,
      ratio: fmt.ratio(c.vsSingle ?? c.median / s.median),
    });
  }
  return rows;
}
