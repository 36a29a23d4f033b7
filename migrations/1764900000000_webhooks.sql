-- Up Migration

-- The outbox's table (migrations/*_outbox.sql is its owner). Created here only when it does not
-- exist yet, with exactly the shape the outbox writes, so the webhook fan-out below has something
-- to hang its trigger on; on a database where the outbox migration ran, this is a no-op.
CREATE TABLE IF NOT EXISTS events (
  id         uuid PRIMARY KEY,
  seq        bigserial,
  type       text NOT NULL,
  skus       text[] NOT NULL,
  data       jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Webhook subscriptions (docs/DESIGN.md "Webhooks"). `events` is the list of event types, or
-- {'*'} for all. A deleted subscription keeps its row (deliveries refer to it) with deleted_at set.
CREATE TABLE webhook_subscriptions (
  id         uuid PRIMARY KEY,
  url        text NOT NULL,
  events     text[] NOT NULL CHECK (cardinality(events) > 0),
  secret     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
CREATE INDEX webhook_subscriptions_active ON webhook_subscriptions (created_at) WHERE deleted_at IS NULL;

-- One row per (event, subscription that wanted it), inserted by the trigger below in the event's
-- own transaction: a delivery exists if and only if its event committed. `event_seq` and `skus`
-- are copied from the event for the ordering rule: a pending delivery is sent only when no pending
-- delivery of the same subscription with a lower event_seq shares a SKU with it.
-- `claimed_until` is the lease of the dispatcher sending it now (see src/activities/webhooks.ts).
CREATE TABLE webhook_deliveries (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id),
  event_id        uuid NOT NULL,
  event_seq       bigint NOT NULL,
  event_type      text NOT NULL,
  skus            text[] NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  first_attempt_at timestamptz,
  claimed_until   timestamptz,
  claim           uuid,
  delivered_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (subscription_id, event_id)
);
-- The dispatcher's scan: the head of each subscription's pending queue in event order, and the
-- ordering check among those (both read only pending rows, so the index stays small).
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription_id, event_seq) WHERE status = 'pending';
-- GET /v1/webhooks/:id/deliveries, newest first.
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, event_seq DESC);

-- Delivery outcomes by result (delivered, retry, failed), counted by the dispatcher as it records
-- them; the API's /metrics reads them (the dispatcher runs in a worker, which has no /metrics).
CREATE TABLE webhook_counts (
  result text PRIMARY KEY,
  count  bigint NOT NULL DEFAULT 0
);

-- Fan-out: one delivery per active subscription that wants the event's type.
CREATE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_deliveries (subscription_id, event_id, event_seq, event_type, skus)
  SELECT s.id, NEW.id, NEW.seq, NEW.type, NEW.skus
    FROM webhook_subscriptions s
   WHERE s.deleted_at IS NULL AND (NEW.type = ANY (s.events) OR '*' = ANY (s.events));
  RETURN NULL;
END;
$$;
CREATE TRIGGER webhook_fan_out AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION webhook_fan_out();

-- Down Migration
DROP TRIGGER webhook_fan_out ON events;
DROP FUNCTION webhook_fan_out();
DROP TABLE webhook_counts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_subscriptions;
