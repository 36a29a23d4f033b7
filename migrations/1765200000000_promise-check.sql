-- Up Migration

-- PostgreSQL has the last word on holds (docs/DESIGN.md, invariant 1a): a hold's transaction
-- checks, under the SKU's row lock, that a customer of a SKU with `max_per_customer` stays within
-- it as PostgreSQL counts it (held and bought units from that customer's reservation lines). That
-- check reads one customer's reservations, so they need an index of their own.
CREATE INDEX reservations_customer_idx ON reservations (customer_id) WHERE customer_id IS NOT NULL;

-- Down Migration
DROP INDEX reservations_customer_idx;
