-- Up Migration

-- Threshold events name their location (contract v3, "Channels and allocation", events): a
-- stock.low, stock.sold_out or stock.back_in_stock caused by a movement at a location other than
-- `default` carries that movement's `locationId`, as its stock.changed does (docs/API.md, Choices).

-- stock.changed carries the locationId of its movement (contract v3, "Channels and allocation",
-- events), when the movement is not at `default`: a v2 deployment's events are unchanged. So does
-- a threshold event a movement caused: the location of the SKU's last movement in this change,
-- when it is not `default` (a threshold crossed by a hold or a release, no movement, has none).
CREATE OR REPLACE FUNCTION stockhold_change_events(p_before jsonb, p_movements jsonb, p_reservation_type text, p_reservation_id text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  m jsonb;
  s skus;
  crossing text;
  located jsonb;
BEGIN
  FOR m IN SELECT value FROM jsonb_array_elements(COALESCE(p_movements, '[]'::jsonb)) LOOP
    SELECT * INTO s FROM skus WHERE sku = m->>'sku';
    INSERT INTO events (type, skus, data)
    VALUES ('stock.changed', ARRAY[s.sku], stockhold_stock_view(s) || jsonb_build_object('movement', m - 'sku')
                                          || CASE WHEN m ? 'locationId' THEN jsonb_build_object('locationId', m->'locationId')
                                                  ELSE '{}'::jsonb END);
  END LOOP;
  IF p_reservation_type IS NOT NULL AND EXISTS (SELECT 1 FROM reservation_lines WHERE reservation_id = p_reservation_id) THEN
    INSERT INTO events (type, skus, data)
    VALUES (p_reservation_type,
            ARRAY(SELECT l.sku FROM reservation_lines l WHERE l.reservation_id = p_reservation_id ORDER BY l.sku COLLATE "C"),
            stockhold_reservation_view(p_reservation_id));
  END IF;
  FOR s IN SELECT k.* FROM skus k WHERE k.sku IN (SELECT jsonb_object_keys(p_before)) ORDER BY k.sku COLLATE "C" LOOP
    SELECT CASE WHEN x.value ? 'locationId' THEN jsonb_build_object('locationId', x.value->'locationId') ELSE '{}'::jsonb END
      INTO located
      FROM jsonb_array_elements(COALESCE(p_movements, '[]'::jsonb)) WITH ORDINALITY AS x(value, n)
     WHERE x.value->>'sku' = s.sku
     ORDER BY x.n DESC
     LIMIT 1;
    FOREACH crossing IN ARRAY stockhold_threshold_crossings((p_before->>s.sku)::bigint, s.total - s.reserved, s.low_stock_threshold) LOOP
      INSERT INTO events (type, skus, data) VALUES (crossing, ARRAY[s.sku], stockhold_stock_view(s) || COALESCE(located, '{}'::jsonb));
    END LOOP;
  END LOOP;
END;
$$;

-- Down Migration

-- 1765700000000's version, as it was.
-- stock.changed carries the locationId of its movement (contract v3, "Channels and allocation",
-- events), when the movement is not at `default`: a v2 deployment's events are unchanged.
CREATE OR REPLACE FUNCTION stockhold_change_events(p_before jsonb, p_movements jsonb, p_reservation_type text, p_reservation_id text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  m jsonb;
  s skus;
  crossing text;
BEGIN
  FOR m IN SELECT value FROM jsonb_array_elements(COALESCE(p_movements, '[]'::jsonb)) LOOP
    SELECT * INTO s FROM skus WHERE sku = m->>'sku';
    INSERT INTO events (type, skus, data)
    VALUES ('stock.changed', ARRAY[s.sku], stockhold_stock_view(s) || jsonb_build_object('movement', m - 'sku')
                                          || CASE WHEN m ? 'locationId' THEN jsonb_build_object('locationId', m->'locationId')
                                                  ELSE '{}'::jsonb END);
  END LOOP;
  IF p_reservation_type IS NOT NULL AND EXISTS (SELECT 1 FROM reservation_lines WHERE reservation_id = p_reservation_id) THEN
    INSERT INTO events (type, skus, data)
    VALUES (p_reservation_type,
            ARRAY(SELECT l.sku FROM reservation_lines l WHERE l.reservation_id = p_reservation_id ORDER BY l.sku COLLATE "C"),
            stockhold_reservation_view(p_reservation_id));
  END IF;
  FOR s IN SELECT k.* FROM skus k WHERE k.sku IN (SELECT jsonb_object_keys(p_before)) ORDER BY k.sku COLLATE "C" LOOP
    FOREACH crossing IN ARRAY stockhold_threshold_crossings((p_before->>s.sku)::bigint, s.total - s.reserved, s.low_stock_threshold) LOOP
      INSERT INTO events (type, skus, data) VALUES (crossing, ARRAY[s.sku], stockhold_stock_view(s));
    END LOOP;
  END LOOP;
END;
$$;
