-- Up Migration

-- Locations and channels (contract v3, "Locations" and "Channels and allocation"): the registries.
-- A location is where units are counted (a warehouse, a store, a supplier); every deployment has
-- `default`, first in creation order. A channel is how one storefront sees stock: an ordered list
-- of locations and a strategy. The channel `default` is not stored until an admin replaces it:
-- until then it is every location in creation order, `priority` (src/stock/ledger/locations.ts).
-- Ids follow the SKU's pattern (checked by the API; the CHECK keeps out what no route writes).
CREATE TABLE locations (
  location_id text        PRIMARY KEY CHECK (location_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
  name        text        NOT NULL,
  position    bigserial   NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO locations (location_id, name) VALUES ('default', 'Default location');

CREATE TABLE channels (
  channel    text        PRIMARY KEY CHECK (channel ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
  locations  text[]      NOT NULL CHECK (cardinality(locations) BETWEEN 1 AND 50),
  strategy   text        NOT NULL CHECK (strategy IN ('priority', 'most-available')),
  position   bigserial   NOT NULL UNIQUE,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration

DROP TABLE channels;
DROP TABLE locations;
