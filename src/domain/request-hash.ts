/**
 * What makes two requests "the same request": a hash of the body, for the repeats the contract
 * allows (a reservation sent again with its id, an admin write sent again with its Idempotency-Key).
 * One module, so both are found and changed together.
 */
import { createHash } from 'node:crypto';

/** A stable JSON form (sorted keys, undefined left out), so the same request always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The hash of an admin write's request (op, path and body), stored with its Idempotency-Key. */
export function requestHash(request: unknown): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

/**
 * The hash of a reservation's request, as its workflow keeps it (in its input and its memo) and
 * a repeat is compared with. Its form (JSON in this field order, a missing customer as null)
 * is older than `requestHash` and stays as it is: running and closed workflows hold hashes in it,
 * and a repeat sent across a deploy must still match them.
 */
export function reservationRequestHash(request: {
  items: readonly { sku: string; quantity: number; locationId?: string }[];
  ttlSeconds: number;
  customerId?: string;
  /** Contract v3: only a channel other than `default` joins the hash (a v2 request hashes as before). */
  channel?: string;
}): string {
  const { items, ttlSeconds, customerId, channel } = request;
  const lines = items.map((l) =>
    l.locationId === undefined
      ? { sku: l.sku, quantity: l.quantity }
      : { sku: l.sku, quantity: l.quantity, locationId: l.locationId },
  );
  return createHash('sha256')
    .update(
      JSON.stringify({
        items: lines,
        ttlSeconds,
        customerId: customerId ?? null,
        ...(channel !== undefined && channel !== 'default' ? { channel } : {}),
      }),
    )
    .digest('hex');
}
