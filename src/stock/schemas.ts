import { z } from 'zod';
import { StockholdError } from './errors';

/** Limits from the contract. */
export const MAX_LINE_QUANTITY = 10_000;
export const MAX_STOCK = 2 ** 31 - 1;
export const MAX_LINES = 50;

export const skuSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$');
export const reservationIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match ^[A-Za-z0-9_-]{1,64}$');
export const lineQuantitySchema = z.number().int().min(1).max(MAX_LINE_QUANTITY);
export const stockFigureSchema = z.number().int().min(0).max(MAX_STOCK);
export const positiveStockSchema = z.number().int().min(1).max(MAX_STOCK);
export const deltaSchema = z
  .number()
  .int()
  .min(-MAX_STOCK)
  .max(MAX_STOCK)
  .refine((d) => d !== 0, 'must not be zero');
export const reasonSchema = z.string().min(1).max(500);
export const nameSchema = z.string().max(200);
export const customerIdSchema = z.string().min(1).max(128);
export const idempotencyKeySchema = z.string().regex(/^[\x20-\x7e]{1,128}$/, 'must be 1..128 printable characters');

export const lineSchema = z.strictObject({ sku: skuSchema, quantity: lineQuantitySchema });
export type Line = z.infer<typeof lineSchema>;

/** Lines of a cart or a commit: 1..50, each SKU at most once. */
export const linesSchema = z
  .array(lineSchema)
  .min(1)
  .max(MAX_LINES)
  .superRefine((lines, ctx) => {
    const seen = new Set<string>();
    lines.forEach((line, i) => {
      if (seen.has(line.sku)) {
        ctx.addIssue({ code: 'custom', message: `sku ${line.sku} appears more than once`, path: [i, 'sku'] });
      }
      seen.add(line.sku);
    });
  });

/** Turns a zod failure into the contract's 400, naming the first bad field. */
export function invalid(error: z.ZodError, prefix: readonly (string | number)[] = []): StockholdError {
  // An unknown key is reported on the object that holds it; name the key itself, as the contract asks.
  const pathOf = (i: z.core.$ZodIssue) => [...prefix, ...i.path, ...(i.code === 'unrecognized_keys' ? i.keys.slice(0, 1) : [])].map(String);
  const issue = error.issues[0];
  const path = issue ? pathOf(issue) : [...prefix].map(String);
  const field = path.length > 0 ? path.join('.') : '(body)';
  return new StockholdError('INVALID_REQUEST', `${field}: ${issue?.message ?? 'invalid'}`, {
    field,
    issues: error.issues.slice(0, 10).map((i) => ({ field: pathOf(i).join('.'), message: i.message })),
  });
}

/** Parses `value` or throws the contract's INVALID_REQUEST naming `field`. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, field?: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw invalid(result.error, field ? [field] : []);
  return result.data;
}
