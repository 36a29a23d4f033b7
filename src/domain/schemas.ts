/**
 * The domain's value rules as zod schemas: SKUs, ids, quantities, lines, free text; HTTP bodies
 * (src/api) are built from them. Workflow code does not import them (zod would cost each cached
 * workflow ~2 MB): src/workflows/validators.ts writes the same rules out by hand, and
 * test/unit/workflow-validators.test.ts checks the two agree.
 */
import { z } from 'zod';
import { StockholdError } from './errors';
import {
  MAX_CLIENT_ID_LENGTH,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_LINE_QUANTITY,
  MAX_LINES,
  MAX_NAME_LENGTH,
  MAX_PER_CUSTOMER,
  MAX_STOCK,
  MAX_TEXT_LENGTH,
  RESERVATION_ID_PATTERN,
  SKU_PATTERN,
} from './limits';

export const skuSchema = z.string().regex(SKU_PATTERN, `must match ${SKU_PATTERN.source}`);
/** A location's id (contract v3): the SKU's pattern. */
export const locationIdSchema = skuSchema.meta({ description: 'the location id (the SKU pattern)' });
/** A channel's name (contract v3): the SKU's pattern. */
export const channelNameSchema = skuSchema.meta({ description: 'the channel name (the SKU pattern)' });
export const reservationIdSchema = z
  .string()
  .regex(RESERVATION_ID_PATTERN, `must match ${RESERVATION_ID_PATTERN.source}`);
export const lineQuantitySchema = z.number().int().min(1).max(MAX_LINE_QUANTITY);
export const stockFigureSchema = z.number().int().min(0).max(MAX_STOCK);
export const positiveStockSchema = z.number().int().min(1).max(MAX_STOCK);
/** A SKU's per-customer limit; null (in a PATCH) removes it. */
export const maxPerCustomerSchema = z.number().int().min(1).max(MAX_PER_CUSTOMER);
/** A SKU's low-stock threshold (available units); null (in a PATCH) removes it. */
export const lowStockThresholdSchema = stockFigureSchema;
export const deltaSchema = z
  .number()
  .int()
  .min(-MAX_STOCK)
  .max(MAX_STOCK)
  .refine((d) => d !== 0, 'must not be zero')
  // A refinement is invisible to z.toJSONSchema: its JSON Schema form goes with it (src/api/openapi/document.ts).
  .meta({ not: { const: 0 } });
/** No control characters (NUL, newlines, escapes…) and no lone surrogates: text PostgreSQL and logs take as is. */
const PRINTABLE = /^[^\p{Cc}\p{Cs}]*$/u;

/** Free text of `min..max` characters (code points) of printable Unicode. */
export function textSchema(min: number, max: number) {
  return (
    z
      .string()
      .superRefine((value, ctx) => {
        if (!PRINTABLE.test(value)) {
          ctx.addIssue({ code: 'custom', message: 'must be printable text: no control characters or lone surrogates' });
          return;
        }
        const length = [...value].length;
        if (length < min || length > max)
          ctx.addIssue({ code: 'custom', message: `must be ${min}..${max} characters` });
      })
      // The same rule for the OpenAPI document: JSON Schema counts code points too, and its patterns are `u` regexes.
      .meta({ minLength: min, maxLength: max, pattern: PRINTABLE.source })
  );
}

export const reasonSchema = textSchema(1, MAX_TEXT_LENGTH);
export const nameSchema = textSchema(1, MAX_NAME_LENGTH);
export const customerIdSchema = textSchema(1, MAX_CLIENT_ID_LENGTH);
export const paymentIdSchema = textSchema(1, MAX_CLIENT_ID_LENGTH);
export const idempotencyKeySchema = z
  .string()
  .regex(
    new RegExp(`^[\\x20-\\x7e]{1,${MAX_IDEMPOTENCY_KEY_LENGTH}}$`),
    `must be 1..${MAX_IDEMPOTENCY_KEY_LENGTH} printable characters`,
  );
export const ttlSecondsSchema = (maxTtlSeconds: number) => z.number().int().min(1).max(maxTtlSeconds);

export const lineSchema = z.strictObject({ sku: skuSchema, quantity: lineQuantitySchema });
/** A line of a cart: optionally pinned to one location (contract v3). */
export const cartLineSchema = lineSchema.extend({ locationId: locationIdSchema.optional() });

/** 1..50 lines, each SKU at most once. */
function linesOf<L extends { sku: string }>(line: z.ZodType<L>) {
  return (
    z
      .array(line)
      .min(1)
      .max(MAX_LINES)
      .superRefine((lines, ctx) => {
        const seen = new Set<string>();
        lines.forEach((l, i) => {
          if (seen.has(l.sku)) {
            ctx.addIssue({ code: 'custom', message: `sku ${l.sku} appears more than once`, path: [i, 'sku'] });
          }
          seen.add(l.sku);
        });
      })
      // JSON Schema has no "unique by a property": the document says it in words.
      .meta({ description: 'each SKU at most once (a repeated SKU is 400 INVALID_REQUEST)' })
  );
}

/** Lines of a commit or a return: 1..50, each SKU at most once. */
export const linesSchema = linesOf(lineSchema);
/** Lines of a cart (POST /v1/reservations): as linesSchema, each may name a `locationId`. */
export const cartLinesSchema = linesOf(cartLineSchema);

export interface InvalidField {
  /** Dotted path of the first bad field (`items.0.quantity`), or `(body)`. */
  field: string;
  message: string;
  issues: { field: string; message: string }[];
}

/** What is wrong, naming the first bad field: an unknown key is named itself, not its object. */
export function describeIssues(error: z.ZodError, prefix: readonly (string | number)[] = []): InvalidField {
  const pathOf = (i: z.core.$ZodIssue) =>
    [...prefix, ...i.path, ...(i.code === 'unrecognized_keys' ? i.keys.slice(0, 1) : [])].map(String);
  const issue = error.issues[0];
  const path = issue ? pathOf(issue) : prefix.map(String);
  const field = path.length > 0 ? path.join('.') : '(body)';
  return {
    field,
    message: `${field}: ${issue?.message ?? 'invalid'}`,
    issues: error.issues.slice(0, 10).map((i) => ({ field: pathOf(i).join('.'), message: i.message })),
  };
}

/** Parses `value` or throws the contract's INVALID_REQUEST naming the bad field (under `field`, if given). */
export function parse<T>(schema: z.ZodType<T>, value: unknown, field?: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { field: bad, message, issues } = describeIssues(result.error, field ? [field] : []);
  throw new StockholdError('INVALID_REQUEST', message, { field: bad, issues });
}
