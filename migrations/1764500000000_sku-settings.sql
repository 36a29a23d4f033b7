-- Up Migration

-- Per-SKU settings (PATCH /v1/skus/:sku): a low-stock threshold (stored and shown; events use it
-- later) and a per-customer limit for drops (units one customer may hold plus have bought).
ALTER TABLE skus
  ADD COLUMN low_stock_threshold integer CHECK (low_stock_threshold BETWEEN 0 AND 2147483647),
  ADD COLUMN max_per_customer integer CHECK (max_per_customer BETWEEN 1 AND 10000);

-- What a customer bought of a SKU (sales minus returns) is summed per SKU over its sale and return
-- movements joined with their reservation's customer: when a limit is set, after a Redis loss, and
-- by the reconciler for limited SKUs.
CREATE INDEX stock_movements_sku_reservation_idx ON stock_movements (sku, reservation_id) WHERE reservation_id IS NOT NULL;

-- Down Migration
DROP INDEX stock_movements_sku_reservation_idx;
ALTER TABLE skus DROP COLUMN max_per_customer, DROP COLUMN low_stock_threshold;
