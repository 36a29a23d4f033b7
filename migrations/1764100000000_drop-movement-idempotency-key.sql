-- Up Migration

-- Never written: Idempotency-Keys live in idempotency_keys, with the answer they stand for.
ALTER TABLE stock_movements DROP COLUMN idempotency_key;

-- Down Migration
ALTER TABLE stock_movements ADD COLUMN idempotency_key text;
