/**
 * The workflow's message checks (src/workflows/validators.ts) are written without zod, which must
 * stay out of the workflow bundle (each workflow evaluates the bundle's modules for itself: zod cost
 * ~2 MB of worker memory per cached workflow). Their answers must still be the HTTP contract's:
 * here they are compared with the domain's zod schemas on generated JSON values.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import fc from 'fast-check';
import type { z } from 'zod';
import { MAX_LINE_QUANTITY } from '../../src/domain/limits';
import { describeIssues, linesSchema, paymentIdSchema, reasonSchema, ttlSecondsSchema } from '../../src/domain/schemas';
import type { CartLine, ReservationLine } from '../../src/domain/types';
import { commitItems, paymentId, reason, ttlSeconds } from '../../src/workflows/validators';
import { quietLogger } from '../helpers/temporal';

type Answer = { ok: unknown } | { field: string; message: string };

function ours(fn: () => unknown): Answer {
  try {
    return { ok: fn() };
  } catch (err) {
    if (!(err instanceof ApplicationFailure) || err.type !== 'INVALID_REQUEST') throw err;
    return { field: (err.details?.[0] as { field: string }).field, message: err.message };
  }
}

function zods(schema: z.ZodType, value: unknown, field: string): Answer {
  const result = schema.safeParse(value);
  if (result.success) return { ok: result.data };
  const { field: bad, message } = describeIssues(result.error, [field]);
  return { field: bad, message };
}

/** Held lines covering every SKU of `items`, so commitItems only ever refuses on validation. */
const heldFor = (items: unknown): ReservationLine[] =>
  Array.isArray(items)
    ? items.flatMap((l: Partial<CartLine>) =>
        typeof l?.sku === 'string'
          ? [{ sku: l.sku, quantity: MAX_LINE_QUANTITY, committedQuantity: 0, returnedQuantity: 0 }]
          : [],
      )
    : [];

const text = fc.oneof(
  fc.string({ maxLength: 140, unit: 'binary' }),
  fc.string({ minLength: 120, maxLength: 140, unit: 'grapheme' }),
  fc.constantFrom('', 'a', 'a\u0000b', '\ud800', '\u007f', 'x'.repeat(129)),
);
const quantity = fc.oneof(
  fc.integer({ min: -2, max: MAX_LINE_QUANTITY + 2 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(1e20, -1e20, 2 ** 53, 1.5),
  fc.jsonValue({ maxDepth: 1 }),
);
const sku = fc.oneof(
  fc.constantFrom('A', 'B', 'SKU-1', 'a b', '', '-x', 'x'.repeat(64), 'x'.repeat(65)),
  fc.string({ maxLength: 70 }),
  fc.jsonValue({ maxDepth: 1 }),
);
const line = fc.oneof(
  { weight: 6, arbitrary: fc.record({ sku, quantity }, { requiredKeys: [] }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.record({ sku, quantity }),
        fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
      )
      .map(([l, extra]) => ({ ...extra, ...l })),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);
const lines = fc.oneof(
  { weight: 8, arbitrary: fc.array(line, { maxLength: 6 }) },
  { weight: 1, arbitrary: fc.array(line, { minLength: 49, maxLength: 52 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const anything = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));

describe('workflow validators answer as the domain schemas do', () => {
  it('ttlSeconds', () => {
    fc.assert(
      fc.property(fc.oneof(quantity, anything), fc.integer({ min: 1, max: 86_400 }), (value, max) => {
        expect(ours(() => ttlSeconds(value, max))).toEqual(zods(ttlSecondsSchema(max), value, 'ttlSeconds'));
      }),
      { numRuns: 2_000 },
    );
  });

  it('paymentId and reason', () => {
    fc.assert(
      fc.property(fc.oneof(text, anything), (value) => {
        expect(ours(() => paymentId(value, true))).toEqual(zods(paymentIdSchema, value, 'paymentId'));
        if (value !== undefined) expect(ours(() => reason(value))).toEqual(zods(reasonSchema, value, 'reason'));
      }),
      { numRuns: 2_000 },
    );
    expect(paymentId(undefined)).toBeUndefined();
    expect(reason(undefined)).toBeUndefined();
  });

  it('commit items (lines)', () => {
    fc.assert(
      fc.property(lines, (value) => {
        if (value === undefined) return;
        expect(ours(() => commitItems(value, heldFor(value)))).toEqual(zods(linesSchema, value, 'items'));
      }),
      { numRuns: 3_000 },
    );
  });

  it('commit items are copied as { sku, quantity } lines', () => {
    const items = [{ sku: 'A', quantity: 2 }];
    const parsed = commitItems(items, [{ sku: 'A', quantity: 5, committedQuantity: 0, returnedQuantity: 0 }]);
    expect(parsed).toEqual(items);
    expect(parsed?.[0]).not.toBe(items[0]);
  });
});

describe('the workflow bundle', () => {
  it('has no zod in it', async () => {
    const { bundleWorkflowCode } = await import('@temporalio/worker');
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../src/workflows'),
      logger: quietLogger,
    });
    expect(code).not.toMatch(/node_modules\/zod\//);
  }, 60_000);
});
