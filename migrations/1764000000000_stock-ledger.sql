-- Up Migration

-- Stock that exists. `total` is stock not yet sold; holds live in Redis (and in `reservations`).
CREATE TABLE skus (
  sku        text PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
  name       text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
  total      bigint NOT NULL CHECK (total >= 0 AND total <= 2147483647),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per reservation that got past the hold decision (rejected ones need not be kept).
CREATE TABLE reservations (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  status      text NOT NULL CHECK (status IN ('PENDING', 'HELD', 'REJECTED', 'COMMITTED', 'CANCELLED', 'EXPIRED')),
  customer_id text,
  payment_id  text,
  reason      text,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_held_idx ON reservations (id) WHERE status = 'HELD';

-- The lines of a reservation. The CHECKs are what make a retried or racing return unable to
-- exceed what was sold: returned <= committed <= quantity, enforced by the database itself.
CREATE TABLE reservation_lines (
  reservation_id     text NOT NULL REFERENCES reservations (id),
  sku                text NOT NULL REFERENCES skus (sku),
  quantity           integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
  committed_quantity integer NOT NULL DEFAULT 0 CHECK (committed_quantity BETWEEN 0 AND quantity),
  returned_quantity  integer NOT NULL DEFAULT 0 CHECK (returned_quantity BETWEEN 0 AND committed_quantity),
  PRIMARY KEY (reservation_id, sku)
);
CREATE INDEX reservation_lines_sku_idx ON reservation_lines (sku);

-- The append-only ledger: every change of `skus.total` has exactly one row here.
CREATE TABLE stock_movements (
  id              bigserial PRIMARY KEY,
  sku             text NOT NULL REFERENCES skus (sku),
  kind            text NOT NULL CHECK (kind IN ('initial', 'restock', 'adjustment', 'sale', 'return')),
  delta           bigint NOT NULL,
  reservation_id  text,
  reason          text,
  idempotency_key text,
  at              timestamptz NOT NULL DEFAULT now(),
  CHECK (kind = 'initial' OR delta <> 0),
  CHECK (kind NOT IN ('restock', 'return') OR delta > 0),
  CHECK (kind <> 'sale' OR delta < 0),
  CHECK ((kind IN ('sale', 'return')) = (reservation_id IS NOT NULL))
);
-- A retried commit cannot sell a line twice; a SKU has one initial movement.
CREATE UNIQUE INDEX stock_movements_one_sale_per_line ON stock_movements (reservation_id, sku) WHERE kind = 'sale';
CREATE UNIQUE INDEX stock_movements_one_initial_per_sku ON stock_movements (sku) WHERE kind = 'initial';
CREATE INDEX stock_movements_sku_newest_idx ON stock_movements (sku, id DESC);

CREATE FUNCTION stock_movements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'stock_movements is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER stock_movements_append_only
  BEFORE UPDATE OR DELETE ON stock_movements
  FOR EACH ROW EXECUTE FUNCTION stock_movements_append_only();

-- Stored answers of admin writes made with an Idempotency-Key: a repeat with the same request
-- returns `response`; another request under the same key is refused.
CREATE TABLE idempotency_keys (
  key          text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 128),
  request_hash text NOT NULL,
  response     jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE idempotency_keys;
DROP TRIGGER stock_movements_append_only ON stock_movements;
DROP FUNCTION stock_movements_append_only();
DROP TABLE stock_movements;
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE skus;
