-- Up Migration

-- What the reconciler did, by kind (lost_hold, phantom_hold, orphan, pending_movement, total,
-- reserved, missing_sku, rebuild, and the alerts unexplained_drift, negative_available), and when
-- it last compared the stores. The API's /metrics reads it: the reconciler runs in one worker.
CREATE TABLE reconciler_counts (
  kind    text PRIMARY KEY,
  count   bigint NOT NULL DEFAULT 0,
  last_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE reconciler_counts;
