/**
 * The transactional outbox (docs/DESIGN.md "Events (outbox)"): the events of a change are rows of
 * `events` inserted by the change's own transaction, so an event exists if and only if its change
 * committed. Callers hold the row locks of the events' SKUs in `skus` (Ledger.lockSkus) when they
 * call recordEvents: per SKU, `seq` then follows the commit order and `created_at` never decreases.
 */
import type { Pool, PoolClient } from 'pg';
import {
  thresholdCrossings,
  type EventType,
  type NewEvent,
  type ReservationEventType,
  type StockholdEvent,
} from '../domain/events';
import { stockView, type Movement, type ReservationView, type SkuRow, type StockView } from '../domain/types';

/** The stock view of a SKU's row in PostgreSQL. */
export function viewOfRow(sku: string, row: SkuRow): StockView {
  return stockView(sku, row.name, row.total, row.reserved, row);
}

/** `stock.changed` for one ledger movement, with the SKU's view after the change. */
export function stockChanged(sku: string, after: SkuRow, movement: Movement): NewEvent {
  return { type: 'stock.changed', skus: [sku], data: { ...viewOfRow(sku, after), movement } };
}

/** The reservation event of a status change; it belongs to every SKU of the cart. */
export function reservationEvent(type: ReservationEventType, view: ReservationView): NewEvent {
  return { type, skus: [...new Set(view.items.map((l) => l.sku))].sort(), data: view };
}

/** The threshold events (stock.low, stock.sold_out, stock.back_in_stock) of a SKU's change from `before` to `after`. */
export function thresholdEvents(sku: string, before: SkuRow, after: SkuRow): NewEvent[] {
  const view = viewOfRow(sku, after);
  return thresholdCrossings(before.total - before.reserved, view.available, after.lowStockThreshold).map((type) => ({
    type,
    skus: [sku],
    data: view,
  }));
}

/**
 * The events of one transaction's change, in the order a reader expects: each movement's
 * `stock.changed`, then the reservation's event, then each SKU's threshold crossings (from its
 * row when the transaction locked it to its row now).
 */
export function changeEvents(input: {
  before: ReadonlyMap<string, SkuRow>;
  after: ReadonlyMap<string, SkuRow>;
  movements?: readonly (Movement & { sku: string })[];
  reservation?: { type: ReservationEventType; view: ReservationView };
}): NewEvent[] {
  const events: NewEvent[] = [];
  for (const { sku, ...movement } of input.movements ?? [])
    events.push(stockChanged(sku, input.after.get(sku)!, movement));
  if (input.reservation) events.push(reservationEvent(input.reservation.type, input.reservation.view));
  for (const [sku, before] of [...input.before].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const after = input.after.get(sku);
    if (after) events.push(...thresholdEvents(sku, before, after));
  }
  return events;
}

/**
 * Inserts events in the caller's transaction, in the given order (one statement: `seq` follows
 * the array). The caller must hold the row lock of every SKU the events belong to.
 */
export async function recordEvents(c: PoolClient, events: readonly NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  await c.query(
    `INSERT INTO events (type, skus, data)
     SELECT e.type, ARRAY(SELECT jsonb_array_elements_text(e.skus)), e.data
       FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (type text, skus jsonb, data jsonb)) WITH ORDINALITY AS e (type, skus, data, n)
      ORDER BY e.n`,
    [JSON.stringify(events)],
  );
}

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
