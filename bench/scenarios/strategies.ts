/**
 * Scenario 4, strategies: the same hot SKU sold one unit at a time by 32 concurrent buyers with
 * four strategies. Timed phase: sales per second with plenty of stock (a lost update is a unit
 * sold twice). Sell-out phase: 1,000 units, buyers buy until refused (units sold past the stock
 * are oversold). Everything runs in forked children against the benchmark's own database and
 * Redis DB; the strategies are not the service's code, except the Lua one, which is lua/hold.lua.
 */
import type { Strategy, StrategyJob, StrategyResult } from '../children/strategies';
import { detail, progress } from '../harness/progress';
import { runJob } from '../harness/procs';
import { round2 } from '../harness/stats';
import { fmt, type Context, type Outcome, type Row } from './types';

export const STRATEGY_GOALS = { luaOverConditionalUpdate: 30 };
const CONCURRENCY = 32;
const SELLOUT_STOCK = 1_000;
const LABELS: Record<Strategy, string> = {
  naive: 'naive read-then-write SQL',
  conditional: 'conditional UPDATE … WHERE available >= n',
  forUpdate: 'SELECT … FOR UPDATE, then UPDATE',
  lua: 'Redis Lua hold (lua/hold.lua)',
};

export interface StrategyFigures {
  opsPerSec: number;
  lostUpdates: number;
  selloutSold: number;
  selloutOversold: number;
  errors: number;
}

export interface StrategiesData {
  naiveOversold: number;
  naiveLostUpdates: number;
  naiveOps: number;
  conditionalUpdateOps: number;
  selectForUpdateOps: number;
  luaOps: number;
  luaOverConditionalUpdate: number;
  concurrency: number;
  selloutStock: number;
  byStrategy: Record<Strategy, StrategyFigures>;
}

export async function strategies(ctx: Context): Promise<Outcome<StrategiesData>> {
  const { target } = ctx;
  progress(
    `strategies: one hot SKU, ${CONCURRENCY} concurrent buyers, timed phase then a sell-out of ${fmt.int(SELLOUT_STOCK)} units`,
  );
  const byStrategy = {} as Record<Strategy, StrategyFigures>;
  for (const strategy of ['naive', 'conditional', 'forUpdate', 'lua'] as const) {
    const run = async (phase: StrategyJob['phase'], initial: number, durationS: number) => {
      const job: StrategyJob = {
        strategy,
        phase,
        databaseUrl: target.benchDatabaseUrl,
        redisUrl: target.benchRedisUrl,
        sku: `HOT-${strategy}-${ctx.run}`,
        initial,
        concurrency: CONCURRENCY,
        durationS,
      };
      return runJob<StrategyResult>('strategies', job, {
        timeoutMs: (durationS + 60) * 1000,
        onProgress: (t) => detail(`${strategy} ${phase}: ${t}`),
      });
    };
    const timed = await run('timed', 2_000_000_000, ctx.seconds(5));
    const sellout = await run('sellout', SELLOUT_STOCK, 60);
    byStrategy[strategy] = {
      opsPerSec: Math.round(timed.opsPerSec),
      lostUpdates: timed.oversold,
      selloutSold: sellout.sold,
      selloutOversold: sellout.oversold,
      errors: timed.errors + sellout.errors,
    };
    detail(
      `${LABELS[strategy]}: ${fmt.int(timed.opsPerSec)} sales/s, ${fmt.int(timed.oversold)} lost updates; sell-out sold ${fmt.int(sellout.sold)} of ${fmt.int(SELLOUT_STOCK)} (${fmt.int(sellout.oversold)} oversold)` +
        `${timed.errors + sellout.errors ? `, ${timed.errors + sellout.errors} errors` : ''}`,
    );
  }
  const data: StrategiesData = {
    naiveOversold: byStrategy.naive.selloutOversold,
    naiveLostUpdates: byStrategy.naive.lostUpdates,
    naiveOps: byStrategy.naive.opsPerSec,
    conditionalUpdateOps: byStrategy.conditional.opsPerSec,
    selectForUpdateOps: byStrategy.forUpdate.opsPerSec,
    luaOps: byStrategy.lua.opsPerSec,
    luaOverConditionalUpdate: round2(byStrategy.lua.opsPerSec / byStrategy.conditional.opsPerSec),
    concurrency: CONCURRENCY,
    selloutStock: SELLOUT_STOCK,
    byStrategy,
  };
  const wrong = (['conditional', 'forUpdate', 'lua'] as const).filter(
    (s) => oversoldOf(byStrategy[s]) > 0 || byStrategy[s].selloutSold !== SELLOUT_STOCK,
  );
  return {
    data,
    rows: strategyRows(data),
    failure: wrong.length > 0 ? `strategies: ${wrong.join(', ')} oversold or undersold` : undefined,
  };
}

const oversoldOf = (f: StrategyFigures) => f.lostUpdates + f.selloutOversold;

export function strategyRows(d: StrategiesData): Row[] {
  const b = d.byStrategy;
  const cond = b.conditional.opsPerSec;
  return [
    {
      scenario: 'strategies',
      measure: LABELS.naive,
      value: `${fmt.int(b.naive.opsPerSec)} /s`,
      ratio: fmt.ratio(b.naive.opsPerSec / cond),
      note: `${fmt.int(d.naiveOversold)} oversold selling out ${fmt.int(d.selloutStock)}; ${fmt.int(d.naiveLostUpdates)} lost updates while timed`,
    },
    {
      scenario: 'strategies',
      measure: LABELS.conditional,
      value: `${fmt.int(cond)} /s`,
      ratio: fmt.ratio(1),
      goal: '0 oversold',
      note: `${fmt.int(oversoldOf(b.conditional))} oversold, sold-out ${fmt.int(b.conditional.selloutSold)}/${fmt.int(d.selloutStock)}`,
      met: oversoldOf(b.conditional) === 0 && b.conditional.selloutSold === d.selloutStock,
    },
    {
      scenario: 'strategies',
      measure: LABELS.forUpdate,
      value: `${fmt.int(b.forUpdate.opsPerSec)} /s`,
      ratio: fmt.ratio(b.forUpdate.opsPerSec / cond),
      goal: '0 oversold',
      note: `${fmt.int(oversoldOf(b.forUpdate))} oversold, sold-out ${fmt.int(b.forUpdate.selloutSold)}/${fmt.int(d.selloutStock)}`,
      met: oversoldOf(b.forUpdate) === 0 && b.forUpdate.selloutSold === d.selloutStock,
    },
    {
      scenario: 'strategies',
      measure: LABELS.lua,
      value: `${fmt.int(b.lua.opsPerSec)} /s`,
      ratio: fmt.ratio(d.luaOverConditionalUpdate),
      goal: `≥ ${STRATEGY_GOALS.luaOverConditionalUpdate}× cond. UPDATE, 0 oversold`,
      note: `${fmt.int(oversoldOf(b.lua))} oversold, sold-out ${fmt.int(b.lua.selloutSold)}/${fmt.int(d.selloutStock)}`,
      met:
        d.luaOverConditionalUpdate >= STRATEGY_GOALS.luaOverConditionalUpdate &&
        oversoldOf(b.lua) === 0 &&
        b.lua.selloutSold === d.selloutStock,
    },
  ];
}
