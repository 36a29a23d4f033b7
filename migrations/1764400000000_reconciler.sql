-- Up Migration

-- What the reconciler did, by kind: repairs (lost_hold, phantom_hold, orphan, pending_movement,
-- total, reserved, missing_sku, rebuild), alerts (unexplained:<kind>), its scans (scan) and sales
-- PostgreSQL refused (refused_sale). The API's /metrics reads it: the reconciler runs in one worker.
CREATE TABLE reconciler_counts (
  kind    text PRIMARY KEY,
  count   bigint NOT NULL DEFAULT 0,
  last_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE reconciler_counts;
