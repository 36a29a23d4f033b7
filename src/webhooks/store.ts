/**
 * Every SQL statement of webhooks: subscriptions and their deliveries (read and changed by the
 * admin routes), the dispatcher's claims and outcomes, and the counts /metrics shows. Deliveries
 * are inserted by the fan-out trigger on `events` (migrations/1764900000000_webhooks.sql), in each
 * event's own transaction.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { StockholdError } from '../domain/errors';

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** At most this many deliveries are listed, newest first. */
export const MAX_DELIVERIES_LISTED = 500;

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

/** A subscription as the API shows it (never its secret, but when it is created). */
export interface Subscription {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
}

/** A delivery as the API shows it. */
export interface Delivery {
  id: string;
  eventId: string;
  type: string;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: string | null;
}

interface SubscriptionRow {
  id: string;
  url: string;
  events: string[];
  created_at: Date;
}

const view = (row: SubscriptionRow): Subscription => ({ id: row.id, url: row.url, events: row.events, createdAt: row.created_at.toISOString() });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function webhookNotFound(id: string): StockholdError {
  return new StockholdError('NOT_FOUND', `webhook ${id} does not exist`, { webhookId: id });
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

export class WebhookStore {
  constructor(private readonly db: Pool) {}

  // ---------------------------------------------------------------- subscriptions (admin)

  /** A new subscription to `events` (['*'] for all), signed with `secret`. */
  async subscribe(url: string, events: readonly string[], secret: string): Promise<Subscription> {
    const { rows } = await this.db.query<SubscriptionRow>(
      'INSERT INTO webhook_subscriptions (id, url, events, secret) VALUES ($1, $2, $3, $4) RETURNING id, url, events, created_at',
      [randomUUID(), url, events, secret],
    );
    return view(rows[0]!);
  }

  /** The active subscriptions, oldest first. */
  async subscriptions(): Promise<Subscription[]> {
    const { rows } = await this.db.query<SubscriptionRow>('SELECT id, url, events, created_at FROM webhook_subscriptions WHERE deleted_at IS NULL ORDER BY created_at, id');
    return rows.map(view);
  }

  /** Deletes a subscription and stops its pending deliveries (marked failed), in one statement; NOT_FOUND when there is none. */
  async unsubscribe(id: string): Promise<void> {
    await this.activeSubscription(id);
    await this.db.query(
      `WITH gone AS (UPDATE webhook_subscriptions SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING id)
       UPDATE webhook_deliveries SET status = 'failed', last_error = 'subscription deleted', claimed_until = NULL
        WHERE subscription_id IN (SELECT id FROM gone) AND status = 'pending'`,
      [id],
    );
  }

  /** A subscription's deliveries, newest first (at most MAX_DELIVERIES_LISTED), optionally of one status. */
  async deliveries(id: string, status?: DeliveryStatus): Promise<Delivery[]> {
    await this.activeSubscription(id);
    const { rows } = await this.db.query<{ id: string; event_id: string; event_type: string; status: DeliveryStatus; attempts: number; last_error: string | null; next_attempt_at: Date }>(
      `SELECT id, event_id, event_type, status, attempts, last_error, next_attempt_at
         FROM webhook_deliveries
        WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2)
        ORDER BY event_seq DESC
        LIMIT ${MAX_DELIVERIES_LISTED}`,
      [id, status ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      eventId: r.event_id,
      type: r.event_type,
      status: r.status,
      attempts: r.attempts,
      lastError: r.last_error,
      nextAttemptAt: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
    }));
  }

  /**
   * Makes a delivery pending again, due now, with a new 24-hour window. It keeps its place in event
   * order: later pending deliveries of its SKUs wait for it (docs/DESIGN.md "Webhooks").
   */
  async retry(id: string, deliveryId: string): Promise<void> {
    await this.activeSubscription(id);
    const notFound = () => new StockholdError('NOT_FOUND', `delivery ${deliveryId} of webhook ${id} does not exist`, { webhookId: id, deliveryId });
    if (!UUID.test(deliveryId)) throw notFound();
    const { rowCount } = await this.db.query(
      `UPDATE webhook_deliveries
          SET status = 'pending', next_attempt_at = now(), first_attempt_at = NULL, delivered_at = NULL
        WHERE id = $1 AND subscription_id = $2`,
      [deliveryId, id],
    );
    if (!rowCount) throw notFound();
  }

  /** Delivery outcomes by result, and pending deliveries, for /metrics (src/api/metrics/registry.ts). */
  async counts(): Promise<{ results: { result: string; count: number }[]; pending: number }> {
    const [results, pending] = await Promise.all([
      this.db.query<{ result: string; count: string }>('SELECT result, count FROM webhook_counts'),
      this.db.query<{ n: string }>("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'"),
    ]);
    return { results: results.rows.map((r) => ({ result: r.result, count: Number(r.count) })), pending: Number(pending.rows[0]?.n ?? 0) };
  }

  /**
   * The outbox's lag: the age of the oldest event an active subscription still waits for (0 when
   * none waits). One index probe per active subscription (the partial index on pending
   * deliveries), however long the queues are.
   */
  async lagSeconds(): Promise<number> {
    const { rows } = await this.db.query<{ lag: number | null }>(
      `SELECT extract(epoch FROM now() - min(e.created_at))::float8 AS lag
         FROM webhook_subscriptions s
         -- a deleted subscription's deliveries stopped (failed) with it
         CROSS JOIN LATERAL (SELECT event_id FROM webhook_deliveries d
                              WHERE d.subscription_id = s.id AND d.status = 'pending'
                              ORDER BY d.event_seq LIMIT 1) head
         JOIN events e ON e.id = head.event_id
        WHERE s.deleted_at IS NULL`,
    );
    return Math.max(0, rows[0]?.lag ?? 0);
  }

  /** NOT_FOUND unless `id` is an active subscription (a malformed id is as unknown as a missing one). */
  private async activeSubscription(id: string): Promise<void> {
    if (!UUID.test(id)) throw webhookNotFound(id);
    const { rowCount } = await this.db.query('SELECT 1 FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL', [id]);
    if (!rowCount) throw webhookNotFound(id);
  }

  // ---------------------------------------------------------------- the dispatcher

  /**
   * Leases up to `room` due deliveries under `claim` for `leaseMs`: the heads of the subscriptions'
   * queues (at most `perSubscription` each, none of `busy`), then loads them in event order.
   */
  async claim(leaseMs: number, claim: string, perSubscription: number, busy: readonly string[], room: number): Promise<Claimed[]> {
    const ids = (await this.db.query<{ id: string }>(CLAIM_SQL, [leaseMs, claim, perSubscription, busy, room])).rows.map((r) => r.id);
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
  async failedAttempt(id: string, claim: string, error: string, giveUpAfterMs: number, retryDelayMs: number): Promise<'retry' | 'failed' | undefined> {
    const { rows } = await this.db.query<{ result: 'retry' | 'failed' }>(FAILED_ATTEMPT_SQL, [id, claim, error, giveUpAfterMs, retryDelayMs]);
    return rows[0]?.result;
  }
}
