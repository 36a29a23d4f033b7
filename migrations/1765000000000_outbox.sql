-- Up Migration

-- The transactional outbox (docs/DESIGN.md "Events (outbox)"): every event of the contract
-- (docs/API.md, Events) is a row written in the same transaction as the change it reports, so an
-- event exists if and only if its change committed. Per SKU, the writers take the SKU's row lock
-- in `skus` before inserting, so `seq` follows the commit order and `created_at` (the clock read
-- at the insert, after the lock) never decreases along it. `skus` lists the SKUs an event belongs
-- to (a reservation event: every SKU of its cart).
--
-- The webhooks migration (1764900000000) already created the table in this shape, without these
-- defaults, constraints and indexes, so that its fan-out trigger had a table; this one owns it.
CREATE TABLE IF NOT EXISTS events (
  id         uuid PRIMARY KEY,
  seq        bigserial,
  type       text NOT NULL,
  skus       text[] NOT NULL,
  data       jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE events
  ALTER COLUMN id SET DEFAULT gen_random_uuid(),
  ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
  ADD CONSTRAINT events_seq_key UNIQUE (seq),
  ADD CONSTRAINT events_skus_check CHECK (cardinality(skus) > 0) NOT VALID;
-- Reading one SKU's events in order (GIN: `skus @> ARRAY[...]`), and all of them by seq (the UNIQUE above).
CREATE INDEX events_skus_idx ON events USING gin (skus);

-- Events are facts: like stock_movements, never changed or removed (a retention job, if one is
-- ever needed, replaces this trigger for its own DELETE).
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- What HELD reservations hold of each SKU in PostgreSQL, kept in the transactions that move a
-- reservation into or out of HELD: the threshold events need `available = total - reserved` before
-- and after each change, under the SKU's row lock, without summing the SKU's whole history.
ALTER TABLE skus ADD COLUMN reserved bigint NOT NULL DEFAULT 0;
UPDATE skus s SET reserved = h.held
  FROM (SELECT l.sku, sum(l.quantity) AS held FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
         WHERE r.status = 'HELD' GROUP BY l.sku) h
 WHERE s.sku = h.sku;

-- Down Migration
ALTER TABLE skus DROP COLUMN reserved;
DROP TRIGGER events_append_only ON events;
DROP FUNCTION events_append_only();
DROP INDEX events_skus_idx;
ALTER TABLE events
  DROP CONSTRAINT events_skus_check,
  DROP CONSTRAINT events_seq_key,
  ALTER COLUMN created_at SET DEFAULT now(),
  ALTER COLUMN id DROP DEFAULT;
