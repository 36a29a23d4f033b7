/**
 * Checks of what reaches a reservation from outside the API: update arguments and signal payloads
 * (a payment service, another SDK or the CLI may send anything). Built from the domain's schemas,
 * so the rules are the HTTP contract's. Each returns the parsed value or throws the refusal.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { BUSINESS_CODES, quantityExceedsHold, type StockholdError } from '../domain/errors';
import { describeIssues, linesSchema, paymentIdSchema, reasonSchema, ttlSecondsSchema } from '../domain/schemas';
import type { CartLine, ReservationLine } from '../domain/types';

/** A refusal the caller receives with its contract code; never retried. */
export function refusal(code: string, message: string, details: Record<string, unknown> = {}): ApplicationFailure {
  return ApplicationFailure.create({ type: code, message, details: [details], nonRetryable: true });
}

export function asFailure(err: StockholdError): ApplicationFailure {
  return refusal(err.code, err.message, err.details);
}

/** The business refusal behind an activity failure, if it is one (a store outage is not). */
export function businessRefusal(err: unknown): ApplicationFailure | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type && (BUSINESS_CODES as readonly string[]).includes(cause.type)) return cause;
  return undefined;
}

function check<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { field: bad, message } = describeIssues(result.error, [field]);
  throw refusal('INVALID_REQUEST', message, { field: bad });
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The `field` of an argument object, or undefined when the argument is missing or not an object. */
export function fieldOf(args: unknown, field: string): unknown {
  return isObject(args) ? args[field] : undefined;
}

/** Commit items (optional): valid lines, each within what the reservation holds. */
export function commitItems(items: unknown, held: readonly ReservationLine[]): CartLine[] | undefined {
  if (items === undefined) return undefined;
  const lines = check(linesSchema, items, 'items');
  for (const item of lines) {
    const line = held.find((l) => l.sku === item.sku);
    if (!line || item.quantity > line.quantity) throw asFailure(quantityExceedsHold(item.sku, item.quantity, line?.quantity ?? 0));
  }
  return lines;
}

export function ttlSeconds(value: unknown, maxTtlSeconds: number): number {
  return check(ttlSecondsSchema(maxTtlSeconds), value, 'ttlSeconds');
}

/** An optional paymentId (the commit update); `required` for the paymentSucceeded signal, which must name its payment. */
export function paymentId(value: unknown, required = false): string | undefined {
  return value === undefined && !required ? undefined : check(paymentIdSchema, value, 'paymentId');
}

export function reason(value: unknown): string | undefined {
  return value === undefined ? undefined : check(reasonSchema, value, 'reason');
}
