/**
 * Idempotency keys of admin writes (restock, adjustment, return, new SKU): the first request's
 * answer is stored in the same transaction as its change; a repeat with the same request gets it
 * back and changes nothing; another request under the same key is IDEMPOTENCY_KEY_REUSED.
 */
import type { Pool, PoolClient } from 'pg';
import { StockholdError } from '../domain/errors';
import { requestHash } from '../domain/request-hash';
import { transaction } from './database';

/** What a keyed write did: its answer and the ledger movements it recorded. */
export interface Outcome<T> {
  result: T;
  movementIds: string[];
}

/**
 * Runs `work` in a transaction, under `key` when one is given. `fresh` is false when the outcome
 * is the stored one of an earlier request (then `work` did not run; its movements are returned so
 * the caller can make sure Redis has them).
 */
export async function idempotent<T>(
  db: Pool,
  key: string | undefined,
  request: unknown,
  work: (c: PoolClient) => Promise<Outcome<T>>,
): Promise<Outcome<T> & { fresh: boolean }> {
  return transaction(db, async (c) => {
    if (key === undefined) return { ...(await work(c)), fresh: true };
    const hash = requestHash(request);
    // Serialises requests sharing a key; the second one sees the first one's stored answer.
    await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
    const stored = await c.query<{ request_hash: string; response: T; movement_ids: string[] }>(
      'SELECT request_hash, response, movement_ids::text[] AS movement_ids FROM idempotency_keys WHERE key = $1',
      [key],
    );
    const row = stored.rows[0];
    if (row) {
      if (row.request_hash !== hash) {
        throw new StockholdError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request', {
          idempotencyKey: key,
        });
      }
      return { result: row.response, movementIds: row.movement_ids, fresh: false };
    }
    const outcome = await work(c);
    await c.query(
      'INSERT INTO idempotency_keys (key, request_hash, response, movement_ids) VALUES ($1, $2, $3, $4::bigint[])',
      [key, hash, JSON.stringify(outcome.result), outcome.movementIds],
    );
    return { ...outcome, fresh: true };
  });
}
