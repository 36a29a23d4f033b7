/**
 * Checks of what reaches a reservation from outside the API: update arguments and signal payloads
 * (a payment service, another SDK or the CLI may send anything). Each returns the parsed value or
 * throws the refusal.
 *
 * The rules are the HTTP contract's (src/domain/schemas.ts), written out by hand instead of
 * importing those zod schemas: the workflow sandbox evaluates every module of the bundle once per
 * workflow (reuseV8Context keeps a module cache per workflow), so zod cost each cached workflow
 * ~2 MB of worker memory and each new or replayed one the time to build it (2,377 MB RSS at 2,500
 * live holds against 507 MB before zod came in; bench/FINDINGS.md). The messages and fields are
 * zod's, and test/unit/workflow-validators.test.ts checks them against the schemas on generated
 * JSON values, so the two cannot drift apart.
 */
import { quantityExceedsHold } from '../domain/errors';
import { failure, toFailure } from '../domain/failures';
import { MAX_CLIENT_ID_LENGTH, MAX_LINE_QUANTITY, MAX_LINES, MAX_TEXT_LENGTH, SKU_PATTERN } from '../domain/limits';
import type { CartLine, ReservationLine } from '../domain/types';

/** What is wrong with a value: the path below the checked field and the message (zod's words). */
interface Issue {
  path: (string | number)[];
  message: string;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The value's kind as zod's messages name it ("received null", "received array", ...). */
function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return typeof value;
}

const expected = (type: string, value: unknown): Issue => ({
  path: [],
  message: `Invalid input: expected ${type}, received ${kind(value)}`,
});

/** z.number().int().min(min).max(max) */
function integerIssue(value: unknown, min: number, max: number): Issue | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return expected('number', value);
  if (!Number.isInteger(value)) return expected('int', value);
  if (value > Number.MAX_SAFE_INTEGER)
    return { path: [], message: `Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}` };
  if (value < Number.MIN_SAFE_INTEGER)
    return { path: [], message: `Too small: expected int to be >=${Number.MIN_SAFE_INTEGER}` };
  if (value < min) return { path: [], message: `Too small: expected number to be >=${min}` };
  if (value > max) return { path: [], message: `Too big: expected number to be <=${max}` };
  return undefined;
}

/** No control characters and no lone surrogates (the domain's PRINTABLE). */
const PRINTABLE = /^[^\p{Cc}\p{Cs}]*$/u;

/** textSchema(min, max): printable text of min..max code points. */
function textIssue(value: unknown, min: number, max: number): Issue | undefined {
  if (typeof value !== 'string') return expected('string', value);
  if (!PRINTABLE.test(value))
    return { path: [], message: 'must be printable text: no control characters or lone surrogates' };
  const length = [...value].length;
  if (length < min || length > max) return { path: [], message: `must be ${min}..${max} characters` };
  return undefined;
}

const under = (prefix: (string | number)[], issue: Issue | undefined): Issue | undefined =>
  issue && { path: [...prefix, ...issue.path], message: issue.message };

/** lineSchema: exactly { sku, quantity }. */
function lineIssue(value: unknown): Issue | undefined {
  if (!isObject(value)) return expected('object', value);
  const { sku, quantity } = value;
  const skuIssue =
    typeof sku !== 'string'
      ? expected('string', sku)
      : SKU_PATTERN.test(sku)
        ? undefined
        : { path: [], message: `must match ${SKU_PATTERN.source}` };
  const issue = under(['sku'], skuIssue) ?? under(['quantity'], integerIssue(quantity, 1, MAX_LINE_QUANTITY));
  if (issue) return issue;
  const unknown = Object.keys(value).filter((key) => key !== 'sku' && key !== 'quantity');
  if (unknown.length === 0) return undefined;
  const keys = unknown.map((key) => `"${key}"`).join(', ');
  return { path: [unknown[0]!], message: `Unrecognized key${unknown.length > 1 ? 's' : ''}: ${keys}` };
}

/** linesSchema: 1..MAX_LINES lines, each SKU at most once. */
function linesIssue(value: unknown): Issue | undefined {
  if (!Array.isArray(value)) return expected('array', value);
  if (value.length < 1) return { path: [], message: 'Too small: expected array to have >=1 items' };
  if (value.length > MAX_LINES) return { path: [], message: `Too big: expected array to have <=${MAX_LINES} items` };
  for (const [i, line] of value.entries()) {
    const issue = under([i], lineIssue(line));
    if (issue) return issue;
  }
  const seen = new Set<string>();
  for (const [i, line] of (value as CartLine[]).entries()) {
    if (seen.has(line.sku)) return { path: [i, 'sku'], message: `sku ${line.sku} appears more than once` };
    seen.add(line.sku);
  }
  return undefined;
}

/** Throws the contract's INVALID_REQUEST naming the bad field, as the API's describeIssues does. */
function check(issue: Issue | undefined, field: string): void {
  if (!issue) return;
  const bad = [field, ...issue.path].join('.');
  throw failure('INVALID_REQUEST', `${bad}: ${issue.message}`, { field: bad });
}

/** The `field` of an argument object, or undefined when the argument is missing or not an object. */
export function fieldOf(args: unknown, field: string): unknown {
  return isObject(args) ? args[field] : undefined;
}

/** Commit items (optional): valid lines, each within what the reservation holds. */
export function commitItems(items: unknown, held: readonly ReservationLine[]): CartLine[] | undefined {
  if (items === undefined) return undefined;
  check(linesIssue(items), 'items');
  const lines = (items as CartLine[]).map(({ sku, quantity }) => ({ sku, quantity }));
  for (const item of lines) {
    const line = held.find((l) => l.sku === item.sku);
    if (!line || item.quantity > line.quantity)
      throw toFailure(quantityExceedsHold(item.sku, item.quantity, line?.quantity ?? 0));
  }
  return lines;
}

export function ttlSeconds(value: unknown, maxTtlSeconds: number): number {
  check(integerIssue(value, 1, maxTtlSeconds), 'ttlSeconds');
  return value as number;
}

/** An optional paymentId (the commit update); `required` for the paymentSucceeded signal, which must name its payment. */
export function paymentId(value: unknown, required = false): string | undefined {
  if (value === undefined && !required) return undefined;
  check(textIssue(value, 1, MAX_CLIENT_ID_LENGTH), 'paymentId');
  return value as string;
}

export function reason(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  check(textIssue(value, 1, MAX_TEXT_LENGTH), 'reason');
  return value as string;
}
