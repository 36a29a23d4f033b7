-- Up Migration

-- The ledger movements a stored answer stands for: a repeat of the request re-applies them to
-- Redis (idempotent by movement id), so a write whose Redis step failed is completed by its retry.
ALTER TABLE idempotency_keys ADD COLUMN movement_ids bigint[] NOT NULL DEFAULT '{}';

-- Down Migration
ALTER TABLE idempotency_keys DROP COLUMN movement_ids;
