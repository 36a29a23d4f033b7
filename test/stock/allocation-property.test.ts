/**
 * Allocation in the hold (contract v3, "Channels and allocation") as a property, through the stock
 * module (hold.lua, then PostgreSQL's stockhold_hold) on real Redis and PostgreSQL: random SKUs
 * stocked over 3 locations, random channels (their locations, order and strategy), random carts
 * of 1..2 lines, some pinned. In sequence, every cart's outcome and every line's allocation is
 * what a model written from the contract's words says; then carts race (all at once), and
 * whatever order they landed in, no location is held beyond its own units and both stores agree
 * on every level and every hold's allocation.
 */
import fc from 'fast-check';
import type { Allocation, AllocationStrategy } from '../../src/domain/types';
import { uniqueId, uniqueSku } from '../helpers/env';
import { expectConsistent, expiresIn, testStock } from '../helpers/stock';

const clients = testStock();
const { stock } = clients;
afterAll(() => clients.close());

const LOCATIONS = [uniqueSku('PA'), uniqueSku('PB'), uniqueSku('PC')];

beforeAll(async () => {
  for (const id of LOCATIONS) await stock.createLocation({ locationId: id, name: id });
});

interface Line {
  sku: number;
  quantity: number;
  pinned?: number;
}
interface Case {
  stocked: number[][];
  channel: { order: number[]; strategy: AllocationStrategy };
  carts: Line[][];
}

/** The contract's words, apart from the script: per location available, in channel order. */
function allocate(
  levels: number[],
  order: number[],
  strategy: AllocationStrategy,
  quantity: number,
  pinned?: number,
): Allocation[] | undefined {
  if (pinned !== undefined)
    return order.includes(pinned) && levels[pinned]! >= quantity
      ? [{ locationId: LOCATIONS[pinned]!, quantity }]
      : undefined;
  const ranked =
    strategy === 'priority'
      ? order
      : [...order].sort((a, b) => levels[b]! - levels[a]! || order.indexOf(a) - order.indexOf(b));
  const whole = ranked.find((i) => levels[i]! >= quantity);
  if (whole !== undefined) return [{ locationId: LOCATIONS[whole]!, quantity }];
  if (ranked.reduce((sum, i) => sum + levels[i]!, 0) < quantity) return undefined;
  const parts: Allocation[] = [];
  let left = quantity;
  for (const i of ranked) {
    const take = Math.min(levels[i]!, left);
    if (take > 0) parts.push({ locationId: LOCATIONS[i]!, quantity: take });
    left -= take;
  }
  return parts;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  stocked: fc.array(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 3, maxLength: 3 }), {
    minLength: 2,
    maxLength: 2,
  }),
  channel: fc.record({
    order: fc.shuffledSubarray([0, 1, 2], { minLength: 1 }),
    strategy: fc.constantFrom<AllocationStrategy>('priority', 'most-available'),
  }),
  carts: fc.array(
    fc.uniqueArray(
      fc.record(
        {
          sku: fc.integer({ min: 0, max: 1 }),
          quantity: fc.integer({ min: 1, max: 5 }),
          pinned: fc.integer({ min: 0, max: 2 }),
        },
        { requiredKeys: ['sku', 'quantity'] },
      ),
      { minLength: 1, maxLength: 2, selector: (l) => l.sku },
    ),
    { minLength: 1, maxLength: 8 },
  ),
});

/** Two SKUs stocked as the case says, and the case's channel. */
async function setUp(c: Case): Promise<{ skus: string[]; channel: string }> {
  const skus: string[] = [];
  for (const levels of c.stocked) {
    const sku = uniqueSku('PROP');
    await stock.createSku({ sku, locations: Object.fromEntries(LOCATIONS.map((id, i) => [id, levels[i]!])) });
    skus.push(sku);
  }
  const channel = uniqueSku('pch');
  await stock.putChannel({
    channel,
    locations: c.channel.order.map((i) => LOCATIONS[i]!),
    strategy: c.channel.strategy,
  });
  return { skus, channel };
}

const items = (cart: Line[], skus: string[], order: number[]) =>
  cart.map((l) => ({
    sku: skus[l.sku]!,
    quantity: l.quantity,
    // A pinned line names a location of the channel (the API refuses one outside it).
    ...(l.pinned !== undefined ? { locationId: LOCATIONS[order[l.pinned % order.length]!]! } : {}),
  }));

test('in sequence, each cart is held or refused, and each line allocated, as the model says', async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      const { skus, channel } = await setUp(c);
      const levels = c.stocked.map((l) => [...l]);
      for (const cart of c.carts) {
        const lines = items(cart, skus, c.channel.order);
        const expected = lines.map((l, k) =>
          allocate(
            levels[cart[k]!.sku]!,
            c.channel.order,
            c.channel.strategy,
            l.quantity,
            l.locationId === undefined ? undefined : LOCATIONS.indexOf(l.locationId),
          ),
        );
        const reservationId = uniqueId('prop');
        const outcome = await stock
          .hold({ reservationId, items: lines, expiresAt: expiresIn(), channel })
          .then((held) => ({ held: true, allocations: held.allocations }))
          .catch((err: { code?: string }) => ({ held: false, code: err.code }));
        if (expected.some((a) => a === undefined)) {
          expect(outcome).toEqual({ held: false, code: 'INSUFFICIENT_STOCK' });
          continue;
        }
        expect(outcome.held).toBe(true);
        const shown = (outcome as { allocations?: (Allocation[] | null)[] }).allocations;
        expect(lines.map((_, k) => shown?.[k] ?? [{ locationId: 'default', quantity: lines[k]!.quantity }])).toEqual(
          expected,
        );
        expected.forEach((parts, k) => {
          for (const p of parts!) levels[cart[k]!.sku]![LOCATIONS.indexOf(p.locationId)]! -= p.quantity;
        });
      }
      for (const sku of skus) await expectConsistent(clients, sku);
    }),
    { numRuns: 40 },
  );
}, 120_000);

test('racing carts never hold a location beyond its own units, and both stores agree on every level', async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      const { skus, channel } = await setUp(c);
      const carts = [...c.carts, ...c.carts];
      await Promise.all(
        carts.map((cart) =>
          stock
            .hold({
              reservationId: uniqueId('race'),
              items: items(cart, skus, c.channel.order),
              expiresAt: expiresIn(),
              channel,
            })
            .catch((err: { code?: string }) => {
              if (err.code !== 'INSUFFICIENT_STOCK') throw err;
            }),
        ),
      );
      for (const [k, sku] of skus.entries()) {
        const { rows } = await clients.db.query<{ location_id: string; total: string; reserved: string }>(
          'SELECT location_id, total, reserved FROM stock_levels WHERE sku = $1',
          [sku],
        );
        for (const r of rows) {
          expect(Number(r.reserved)).toBeLessThanOrEqual(Number(r.total));
          expect(Number(r.total)).toBe(c.stocked[k]![LOCATIONS.indexOf(r.location_id)]);
        }
        await expectConsistent(clients, sku);
      }
    }),
    { numRuns: 15 },
  );
}, 120_000);
