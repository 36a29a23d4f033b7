-- Up Migration

-- Reservations by the status they reached, for /metrics (stockhold_reservations_total{status}),
-- counted by a trigger in the very transaction that moves a reservation, so each change counts
-- exactly once however often an activity is retried, and a repeated request (which changes no
-- row) counts nothing. Deployment-wide and exact, without one hot row every hold would queue on:
-- a transaction adds to the row of its own connection's shard (backend pid modulo 64), and a
-- connection runs one transaction at a time, so two holds wait on each other only when their
-- connections' pids collide modulo 64. The shard row is the last lock these transactions take
-- (after their SKUs' and their reservation's), so waiting on it cannot deadlock. /metrics sums
-- the shards.
CREATE TABLE reservation_status_counts (
  status text     NOT NULL,
  shard  smallint NOT NULL,
  count  bigint   NOT NULL DEFAULT 0,
  PRIMARY KEY (status, shard)
);

CREATE FUNCTION count_reservation_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
    RETURN NULL;
  END IF;
  INSERT INTO reservation_status_counts (status, shard, count) VALUES (NEW.status, pg_backend_pid() % 64, 1)
  ON CONFLICT (status, shard) DO UPDATE SET count = reservation_status_counts.count + 1;
  RETURN NULL;
END;
$$;
CREATE TRIGGER count_reservation_status AFTER INSERT OR UPDATE OF status ON reservations
  FOR EACH ROW EXECUTE FUNCTION count_reservation_status();

-- What is already there: every recorded reservation was HELD once, and those that ended, ended once.
INSERT INTO reservation_status_counts (status, shard, count)
SELECT 'HELD', 0, count(*) FROM reservations HAVING count(*) > 0;
INSERT INTO reservation_status_counts (status, shard, count)
SELECT status, 0, count(*) FROM reservations WHERE status <> 'HELD' GROUP BY status;

-- SKUs an admin watches: /metrics has stock gauges for these only (stockhold_stock_units{sku}),
-- so the number of time series stays bounded (METRICS_WATCHED_SKUS_MAX) whatever the catalogue.
CREATE TABLE metrics_watched_skus (
  sku        text PRIMARY KEY REFERENCES skus (sku),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE metrics_watched_skus;
DROP TRIGGER count_reservation_status ON reservations;
DROP FUNCTION count_reservation_status();
DROP TABLE reservation_status_counts;
