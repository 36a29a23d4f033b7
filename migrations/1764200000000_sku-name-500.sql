-- Up Migration

-- A SKU's name is free text of up to 500 characters, like every other free text of the contract.
ALTER TABLE skus DROP CONSTRAINT skus_name_check;
ALTER TABLE skus ADD CONSTRAINT skus_name_check CHECK (length(name) <= 500);

-- Down Migration
ALTER TABLE skus DROP CONSTRAINT skus_name_check;
ALTER TABLE skus ADD CONSTRAINT skus_name_check CHECK (length(name) <= 200);
