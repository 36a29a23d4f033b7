/**
 * The dispatcher's side of webhook_deliveries (./activities.ts sends, this records): claiming due
 * deliveries with a lease (FOR UPDATE SKIP LOCKED, so two dispatchers never send one at once, and
 * in each subscription's event order per SKU), and recording each outcome with its count.
 */
import type { Pool } from 'pg';

/** How many of a subscription's pending deliveries, in event order, one claim looks at. */
const HEAD_WINDOW = 100;

/** A delivery the dispatcher has leased, with what it needs to send it. */
export interface Claimed {
  id: string;
  subscription_id: string;
  attempts: number;
  url: string;
  secret: string;
  event_id: string;
  event_type: string;
  created_at: Date;
  data: unknown;
}

// The claim: the head of each active subscription's pending queue (event order), due, not leased,
// with no earlier pending delivery of that subscription sharing a SKU (the ordering rule); at most
// $3 per subscription, none of the subscriptions in $4 (already at their limit); then leased.
const CLAIM_SQL = `
WITH heads AS (
  SELECT d.id
    FROM webhook_subscriptions s
   CROSS JOIN LATERAL (
     SELECT h.id FROM (
       SELECT id, event_seq, skus, next_attempt_at, claimed_until
         FROM webhook_deliveries
        WHERE subscription_id = s.id AND status = 'pending'
        ORDER BY event_seq
        LIMIT ${HEAD_WINDOW}
     ) h
      WHERE h.next_attempt_at <= now()
        AND (h.claimed_until IS NULL OR h.claimed_until < now())
        AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e
           WHERE e.subscription_id = s.id AND e.status = 'pending' AND e.event_seq < h.event_seq AND e.skus && h.skus)
      ORDER BY h.event_seq
      LIMIT $3
   ) d
   WHERE s.deleted_at IS NULL AND NOT (s.id = ANY ($4::uuid[]))
   LIMIT $5
), locked AS (
  SELECT id FROM webhook_deliveries WHERE id IN (SELECT id FROM heads) FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries w
   SET claimed_until = now() + $1 * interval '1 millisecond', claim = $2
  FROM locked
 WHERE w.id = locked.id AND w.status = 'pending' AND (w.claimed_until IS NULL OR w.claimed_until < now())
RETURNING w.id`;

const LOAD_SQL = `
SELECT d.id, d.subscription_id, d.attempts, s.url, s.secret, e.id AS event_id, e.type AS event_type, e.created_at, e.data
  FROM webhook_deliveries d
  JOIN webhook_subscriptions s ON s.id = d.subscription_id
  JOIN events e ON e.id = d.event_id
 WHERE d.id = ANY ($1::uuid[])
 ORDER BY d.event_seq`;

// Counted in the same statement as the outcome, so the counts match the rows.
const DELIVERED_SQL = `
WITH done AS (
  UPDATE webhook_deliveries
     SET status = 'delivered', delivered_at = now(), attempts = attempts + 1, last_error = NULL,
         first_attempt_at = coalesce(first_attempt_at, now()), claimed_until = NULL
   WHERE id = $1 AND status = 'pending'
  RETURNING 1
)
INSERT INTO webhook_counts (result, count) SELECT 'delivered', count(*) FROM done HAVING count(*) > 0
ON CONFLICT (result) DO UPDATE SET count = webhook_counts.count + excluded.count`;

const FAILED_ATTEMPT_SQL = `
WITH done AS (
  UPDATE webhook_deliveries
     SET attempts = attempts + 1, last_error = $3, first_attempt_at = coalesce(first_attempt_at, now()), claimed_until = NULL,
         status = CASE WHEN now() - coalesce(first_attempt_at, now()) >= $4 * interval '1 millisecond' THEN 'failed' ELSE 'pending' END,
         next_attempt_at = now() + $5 * interval '1 millisecond'
   WHERE id = $1 AND claim = $2 AND status = 'pending'
  RETURNING status
)
INSERT INTO webhook_counts (result, count)
SELECT CASE status WHEN 'failed' THEN 'failed' ELSE 'retry' END, count(*) FROM done GROUP BY status
ON CONFLICT (result) DO UPDATE SET count = webhook_counts.count + excluded.count
RETURNING result`;

export class DeliveryQueue {
  constructor(private readonly db: Pool) {}

  /**
   * Leases up to `room` due deliveries under `claim` for `leaseMs`: the heads of the subscriptions'
   * queues (at most `perSubscription` each, none of `busy`), then loads them in event order.
   */
  async claim(
    leaseMs: number,
    claim: string,
    perSubscription: number,
    busy: readonly string[],
    room: number,
  ): Promise<Claimed[]> {
    const ids = (
      await this.db.query<{ id: string }>(CLAIM_SQL, [leaseMs, claim, perSubscription, busy, room])
    ).rows.map((r) => r.id);
    return ids.length > 0 ? (await this.db.query<Claimed>(LOAD_SQL, [ids])).rows : [];
  }

  /** Records a delivery delivered (and counts it). */
  async delivered(id: string): Promise<void> {
    await this.db.query(DELIVERED_SQL, [id]);
  }

  /**
   * Records a failed attempt of a delivery this `claim` holds: pending again after `retryDelayMs`,
   * or failed for good once `giveUpAfterMs` have passed since its first attempt. The result counted.
   */
  async failedAttempt(
    id: string,
    claim: string,
    error: string,
    giveUpAfterMs: number,
    retryDelayMs: number,
  ): Promise<'retry' | 'failed' | undefined> {
    const { rows } = await this.db.query<{ result: 'retry' | 'failed' }>(FAILED_ATTEMPT_SQL, [
      id,
      claim,
      error,
      giveUpAfterMs,
      retryDelayMs,
    ]);
    return rows[0]?.result;
  }
}
