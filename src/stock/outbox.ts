/**
 * The transactional outbox (docs/DESIGN.md "Events (outbox)"): the events of a change are rows of
 * `events` inserted by the change's own transaction, so an event exists if and only if its change
 * committed. Callers hold the row locks of the events' SKUs in `skus` (Ledger.lockSkus) when they
 * write (src/stock/ledger/events.ts and the functions of migration 1765300000000): per SKU, `seq` then follows the commit order and `created_at` never decreases.
 */
import type { Pool, PoolClient } from 'pg';
import { type EventType, type StockholdEvent } from '../domain/events';

/** Events in outbox order (`seq`), optionally of one SKU and after a `seq`. For tests and operators. */
export async function readEvents(
  db: Pool | PoolClient,
  query: { sku?: string; afterSeq?: string; limit: number },
): Promise<StockholdEvent[]> {
  const rows = await db.query<{
    id: string;
    seq: string;
    type: EventType;
    skus: string[];
    data: unknown;
    created_at: Date;
  }>(
    `SELECT id, seq::text AS seq, type, skus, data, created_at FROM events
      WHERE ($1::text IS NULL OR skus @> ARRAY[$1::text]) AND seq > $2::bigint
      ORDER BY events.seq LIMIT $3`,
    [query.sku ?? null, query.afterSeq ?? '0', query.limit],
  );
  return rows.rows.map(
    (r) =>
      ({
        id: r.id,
        seq: r.seq,
        type: r.type,
        skus: r.skus,
        createdAt: r.created_at.toISOString(),
        data: r.data,
      }) as StockholdEvent,
  );
}
