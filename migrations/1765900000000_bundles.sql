-- Up Migration

-- Bundles (contract v3, "Bundles"; issue 19, first step): a bundle is a SKU made of other SKUs,
-- with no stock of its own. Its definition is a row of `bundles` and its components, in the
-- order given, rows of `bundle_components` (each an existing stocked SKU: the foreign key). A SKU
-- id is either a stocked SKU or a bundle, never both: each insert takes the same advisory lock on
-- the id and then looks at the other table, so two transactions racing to take one id for both
-- cannot both pass (the second waits for the first and then sees its row).
CREATE TABLE bundles (
  sku        text        PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
  name       text        NOT NULL DEFAULT '',
  position   bigserial   NOT NULL UNIQUE,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bundle_components (
  bundle   text    NOT NULL REFERENCES bundles (sku) ON DELETE CASCADE,
  sku      text    NOT NULL REFERENCES skus (sku),
  quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
  position integer NOT NULL CHECK (position BETWEEN 1 AND 20),
  PRIMARY KEY (bundle, sku),
  UNIQUE (bundle, position)
);
CREATE INDEX bundle_components_sku ON bundle_components (sku);

CREATE FUNCTION stockhold_sku_id_free() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('stockhold:sku-id'), hashtext(NEW.sku));
  IF TG_TABLE_NAME = 'skus' AND EXISTS (SELECT 1 FROM bundles WHERE sku = NEW.sku) THEN
    RAISE EXCEPTION 'SKU % is a bundle', NEW.sku USING ERRCODE = 'unique_violation', CONSTRAINT = 'sku_is_bundle';
  END IF;
  IF TG_TABLE_NAME = 'bundles' AND EXISTS (SELECT 1 FROM skus WHERE sku = NEW.sku) THEN
    RAISE EXCEPTION 'SKU % is stocked', NEW.sku USING ERRCODE = 'unique_violation', CONSTRAINT = 'bundle_is_sku';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER skus_id_free BEFORE INSERT ON skus FOR EACH ROW EXECUTE FUNCTION stockhold_sku_id_free();
CREATE TRIGGER bundles_id_free BEFORE INSERT ON bundles FOR EACH ROW EXECUTE FUNCTION stockhold_sku_id_free();

-- Down Migration

DROP TRIGGER bundles_id_free ON bundles;
DROP TRIGGER skus_id_free ON skus;
DROP FUNCTION stockhold_sku_id_free();
DROP TABLE bundle_components;
DROP TABLE bundles;
