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

const view = (row: SubscriptionRow): Subscription => ({
  id: row.id,
  url: row.url,
  events: row.events,
  createdAt: row.created_at.toISOString(),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function webhookNotFound(id: string): StockholdError {
  return new StockholdError('NOT_FOUND', `webhook ${id} does not exist`, { webhookId: id });
}

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
    const { rows } = await this.db.query<SubscriptionRow>(
      'SELECT id, url, events, created_at FROM webhook_subscriptions WHERE deleted_at IS NULL ORDER BY created_at, id',
    );
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
    const { rows } = await this.db.query<{
      id: string;
      event_id: string;
      event_type: string;
      status: DeliveryStatus;
      attempts: number;
      last_error: string | null;
      next_attempt_at: Date;
    }>(
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
    const notFound = () =>
      new StockholdError('NOT_FOUND', `delivery ${deliveryId} of webhook ${id} does not exist`, {
        webhookId: id,
        deliveryId,
      });
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
    return {
      results: results.rows.map((r) => ({ result: r.result, count: Number(r.count) })),
      pending: Number(pending.rows[0]?.n ?? 0),
    };
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
    const { rowCount } = await this.db.query(
      'SELECT 1 FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL',
      [id],
    );
    if (!rowCount) throw webhookNotFound(id);
  }
}
