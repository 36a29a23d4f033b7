/**
 * The allocation rule of contract v3 ("Channels and allocation"), lua/includes/allocate.lua, run by
 * a real Redis: examples from the contract, then fast-check against a model written from the
 * contract's words, and the rule's own invariants (a whole line at one location whenever one has
 * it all, a split only otherwise, never more than a location has).
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { LUA_DIR } from '../../src/paths';
import { TEST_REDIS_URL } from '../helpers/env';

type Strategy = 'priority' | 'most-available';
interface Level {
  id: string;
  available: number;
}
type Allocation = { ok: true; parts: [string, number][] } | { ok: false; short: number };

// The include as the scripts inline it, then a caller: ARGV strategy, quantity, pinned, n, then
// n pairs of (location id, available). Replies {1, id, units, id, units, …} or {0, short}.
const SCRIPT = `${readFileSync(path.join(LUA_DIR, 'includes', 'allocate.lua'), 'utf8')}
local strategy, quantity, pinned, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local locations, available = {}, {}
for i = 1, n do
  locations[i] = ARGV[3 + 2 * i]
  available[i] = tonumber(ARGV[4 + 2 * i])
end
local ids, taken = allocate(locations, available, strategy, quantity, pinned)
if not ids then
  return {0, taken}
end
local out = {1}
for i = 1, #ids do
  out[#out + 1] = ids[i]
  out[#out + 1] = taken[i]
end
return out
`;

const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
afterAll(() => redis.quit());

async function allocate(levels: Level[], strategy: Strategy, quantity: number, pinned = ''): Promise<Allocation> {
  const args = levels.flatMap((l) => [l.id, String(l.available)]);
  const reply = (await redis.eval(SCRIPT, 0, strategy, quantity, pinned, levels.length, ...args)) as (
    string | number
  )[];
  if (reply[0] === 0) return { ok: false, short: Number(reply[1]) };
  const parts: [string, number][] = [];
  for (let i = 1; i < reply.length; i += 2) parts.push([String(reply[i]), Number(reply[i + 1])]);
  return { ok: true, parts };
}

/** The contract's words as code, written apart from the script. */
function model(levels: Level[], strategy: Strategy, quantity: number, pinned = ''): Allocation {
  const units = (l: Level) => Math.max(0, l.available);
  if (pinned !== '') {
    const at = levels.find((l) => l.id === pinned);
    if (!at) return { ok: false, short: 0 };
    return units(at) >= quantity ? { ok: true, parts: [[pinned, quantity]] } : { ok: false, short: units(at) };
  }
  const order = levels
    .map((l, position) => ({ l, position }))
    .sort((a, b) => (strategy === 'most-available' ? units(b.l) - units(a.l) : 0) || a.position - b.position)
    .map((x) => x.l);
  const whole = order.find((l) => units(l) >= quantity);
  if (whole) return { ok: true, parts: [[whole.id, quantity]] };
  const sum = order.reduce((a, l) => a + units(l), 0);
  if (sum < quantity) return { ok: false, short: sum };
  const parts: [string, number][] = [];
  let left = quantity;
  for (const l of order) {
    const take = Math.min(units(l), left);
    if (take > 0) parts.push([l.id, take]);
    left -= take;
    if (left === 0) break;
  }
  return { ok: true, parts };
}

const levels = (...pairs: [string, number][]): Level[] => pairs.map(([id, available]) => ({ id, available }));

describe('allocate.lua: the examples of the contract', () => {
  it('priority: the line goes whole to the first location in list order that has all of it, not split over earlier ones', async () => {
    expect(await allocate(levels(['A', 2], ['B', 5], ['C', 9]), 'priority', 3)).toEqual({
      ok: true,
      parts: [['B', 3]],
    });
  });

  it('most-available: most available first, ties in list order', async () => {
    expect(await allocate(levels(['A', 4], ['B', 9], ['C', 9]), 'most-available', 3)).toEqual({
      ok: true,
      parts: [['B', 3]],
    });
    expect(await allocate(levels(['A', 9], ['B', 9]), 'most-available', 9)).toEqual({ ok: true, parts: [['A', 9]] });
  });

  it('splits only when no location has it all, filling in strategy order', async () => {
    expect(await allocate(levels(['A', 2], ['B', 0], ['C', 3]), 'priority', 4)).toEqual({
      ok: true,
      parts: [
        ['A', 2],
        ['C', 2],
      ],
    });
    expect(await allocate(levels(['A', 2], ['B', 1], ['C', 3]), 'most-available', 6)).toEqual({
      ok: true,
      parts: [
        ['C', 3],
        ['A', 2],
        ['B', 1],
      ],
    });
  });

  it("refuses what the channel cannot cover with the channel's available; a pinned line with its location's", async () => {
    expect(await allocate(levels(['A', 2], ['B', 3]), 'priority', 6)).toEqual({ ok: false, short: 5 });
    expect(await allocate(levels(['A', 9], ['B', 3]), 'priority', 4, 'B')).toEqual({ ok: false, short: 3 });
    expect(await allocate(levels(['A', 9], ['B', 3]), 'priority', 3, 'B')).toEqual({ ok: true, parts: [['B', 3]] });
  });

  it('counts a location over-held (available below 0, after a lost hold came back) as 0', async () => {
    expect(await allocate(levels(['A', -4], ['B', 3]), 'priority', 3)).toEqual({ ok: true, parts: [['B', 3]] });
    expect(await allocate(levels(['A', -4], ['B', 3]), 'priority', 4)).toEqual({ ok: false, short: 3 });
  });
});

describe('allocate.lua against the model', () => {
  const channel = fc
    .uniqueArray(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 1, maxLength: 12 })
    .chain((ids) =>
      fc
        .array(fc.integer({ min: -3, max: 30 }), { minLength: ids.length, maxLength: ids.length })
        .map((available) => ids.map((id, i) => ({ id, available: available[i]! }))),
    );
  const input = channel.chain((ls) =>
    fc.record({
      levels: fc.constant(ls),
      strategy: fc.constantFrom<Strategy>('priority', 'most-available'),
      quantity: fc.integer({ min: 1, max: 120 }),
      pinned: fc.oneof({ weight: 3, arbitrary: fc.constant('') }, fc.constantFrom(...ls.map((l) => l.id))),
    }),
  );

  it('agrees with the model, and keeps the rule: whole when one location can, never more than a location has, the quantity exactly', async () => {
    await fc.assert(
      fc.asyncProperty(input, async ({ levels: ls, strategy, quantity, pinned }) => {
        const got = await allocate(ls, strategy, quantity, pinned);
        expect(got).toEqual(model(ls, strategy, quantity, pinned));
        const has = new Map(ls.map((l) => [l.id, Math.max(0, l.available)]));
        if (!got.ok) {
          const could = pinned ? has.get(pinned)! : [...has.values()].reduce((a, b) => a + b, 0);
          expect(got.short).toBe(could);
          expect(could).toBeLessThan(quantity);
          return;
        }
        expect(got.parts.reduce((a, [, n]) => a + n, 0)).toBe(quantity);
        expect(new Set(got.parts.map(([id]) => id)).size).toBe(got.parts.length);
        for (const [id, n] of got.parts) {
          expect(n).toBeGreaterThan(0);
          expect(n).toBeLessThanOrEqual(has.get(id)!);
        }
        if (pinned) expect(got.parts).toEqual([[pinned, quantity]]);
        else if ([...has.values()].some((a) => a >= quantity)) expect(got.parts).toHaveLength(1);
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 300) },
    );
  });
});
