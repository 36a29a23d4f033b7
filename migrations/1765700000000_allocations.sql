-- Up Migration

-- Holds allocated over locations (issue 18; docs/DESIGN.md, "Locations and channels"). Redis's
-- hold script decides where each line's units are held (lua/hold.lua, the channel's locations in
-- its strategy's order); PostgreSQL records that allocation and checks it per location under the
-- SKU's row lock (its last word on the promise, per location). A sale takes the first allocations
-- first, one `sale` movement per location, so the one-sale-per-line index becomes one per line and
-- location. Returns go back where the units were sold (`returned_quantity` per allocation). A
-- transfer moves unreserved units between two locations as two movements sharing a `transfer_id`.

DROP INDEX stock_movements_one_sale_per_line;
CREATE UNIQUE INDEX stock_movements_one_sale_per_line ON stock_movements (reservation_id, sku, location_id) WHERE kind = 'sale';
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_kind_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_kind_check
  CHECK (kind IN ('initial', 'restock', 'adjustment', 'sale', 'return', 'transfer_out', 'transfer_in'));
ALTER TABLE stock_movements ADD COLUMN transfer_id text;
-- A SKU created with several locations has an `initial` movement at each.
DROP INDEX stock_movements_one_initial_per_sku;
CREATE UNIQUE INDEX stock_movements_one_initial_per_sku ON stock_movements (sku, location_id) WHERE kind = 'initial';
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_transfer_check
  CHECK ((kind IN ('transfer_out', 'transfer_in')) = (transfer_id IS NOT NULL)
         AND (kind <> 'transfer_out' OR delta < 0) AND (kind <> 'transfer_in' OR delta > 0));
ALTER TABLE reservation_allocations ADD COLUMN returned_quantity integer NOT NULL DEFAULT 0;
ALTER TABLE reservation_allocations ADD CONSTRAINT reservation_allocations_returned_check
  CHECK (returned_quantity BETWEEN 0 AND committed_quantity);
UPDATE reservation_allocations a SET returned_quantity = l.returned_quantity
  FROM reservation_lines l WHERE l.reservation_id = a.reservation_id AND l.sku = a.sku AND l.returned_quantity > 0;

DROP FUNCTION stockhold_hold(text, text, timestamptz, text[], integer[], boolean);

-- stockhold_hold with p_allocations (the rest as 1765600000000 had it).
CREATE FUNCTION stockhold_hold(p_id text, p_customer text, p_expires_at timestamptz, p_skus text[],
                               p_quantities integer[], p_events boolean, p_allocations jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  row_status text;
  line record;
  moved skus;
  before jsonb := '{}'::jsonb;
  moved_rows skus[] := '{}';
  counts record;
  refusal jsonb;
  stamps record;
  res_view jsonb;
  crossing text;
  part record;
BEGIN
  -- What needs no lock: every SKU exists, and a limited one is held for a customer.
  FOR line IN SELECT l.sku, k.sku AS known, k.max_per_customer
                FROM unnest(p_skus) WITH ORDINALITY AS l (sku, n) LEFT JOIN skus k USING (sku) ORDER BY l.n LOOP
    IF line.known IS NULL THEN
      RETURN jsonb_build_object('refusal', 'SKU_NOT_FOUND', 'sku', line.sku);
    END IF;
    IF line.max_per_customer IS NOT NULL AND p_customer IS NULL THEN
      RETURN jsonb_build_object('refusal', 'CUSTOMER_REQUIRED', 'sku', line.sku);
    END IF;
  END LOOP;
  -- The reservation's row first.
  SELECT status INTO row_status FROM reservations WHERE id = p_id FOR UPDATE;
  IF row_status IS NOT NULL AND row_status <> 'REJECTED' THEN
    IF row_status <> 'HELD' THEN
      RETURN jsonb_build_object('refusal', 'FINISHED');
    END IF;
    -- A retry finds its own lines; another cart under the same id is a conflict.
    IF (SELECT count(*) FROM reservation_lines WHERE reservation_id = p_id) = cardinality(p_skus)
       AND NOT EXISTS (SELECT 1 FROM unnest(p_skus, p_quantities) AS l (sku, quantity)
                        WHERE NOT EXISTS (SELECT 1 FROM reservation_lines x
                                           WHERE x.reservation_id = p_id AND x.sku = l.sku AND x.quantity = l.quantity)) THEN
      RETURN jsonb_build_object('outcome', 'repeat');
    END IF;
    RETURN jsonb_build_object('refusal', 'OTHER_CART');
  END IF;
  BEGIN
    IF row_status IS NULL THEN
      INSERT INTO reservations (id, status, customer_id, expires_at) VALUES (p_id, 'HELD', p_customer, p_expires_at)
      ON CONFLICT (id) DO NOTHING
      RETURNING created_at, updated_at INTO stamps;
      IF NOT FOUND THEN
        -- Another hold of this id committed meanwhile: decide again against it (a repeat, another
        -- cart, or a REJECTED run). Nothing is written yet.
        RETURN stockhold_hold(p_id, p_customer, p_expires_at, p_skus, p_quantities, p_events, p_allocations);
      END IF;
    ELSE
      -- A REJECTED reservation (an earlier run gave up while the stores were down) holds again.
      UPDATE reservations SET status = 'HELD', customer_id = p_customer, expires_at = p_expires_at, reason = NULL,
                              updated_at = now()
       WHERE id = p_id
      RETURNING created_at, updated_at INTO stamps;
      DELETE FROM reservation_lines WHERE reservation_id = p_id;
    END IF;
    INSERT INTO reservation_lines (reservation_id, sku, quantity)
    SELECT p_id, l.sku, l.quantity FROM unnest(p_skus, p_quantities) AS l (sku, quantity);
    -- Its event's view (docs/API.md, as stockhold_reservation_view has it) from what was just
    -- written, before any SKU is locked.
    IF p_events THEN
      res_view := jsonb_build_object(
        'reservationId', p_id, 'status', 'HELD',
        'items', (SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity, 'committedQuantity', 0,
                                                      'returnedQuantity', 0) ORDER BY l.sku COLLATE "C")
                    FROM unnest(p_skus, p_quantities) AS l (sku, quantity)),
        'customerId', p_customer, 'expiresAt', stockhold_iso(p_expires_at),
        'createdAt', stockhold_iso(stamps.created_at), 'updatedAt', stockhold_iso(stamps.updated_at),
        'workflowId', 'reservation-' || p_id);
    END IF;
    -- Each SKU's row last, in byte order, by the UPDATE that checks the promise: PostgreSQL's last
    -- word, whatever Redis answered (it may have lost another buyer's hold), is that a line may not
    -- take `reserved` above `total`...
    FOR line IN SELECT l.sku, l.quantity, l.n FROM unnest(p_skus, p_quantities) WITH ORDINALITY AS l (sku, quantity, n)
                 ORDER BY l.sku COLLATE "C" LOOP
      UPDATE skus SET reserved = reserved + line.quantity
       WHERE sku = line.sku AND reserved + line.quantity <= total
      RETURNING * INTO moved;
      IF NOT FOUND THEN
        refusal := jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', line.sku, 'requested', line.quantity,
                                      'available', (SELECT k.total - k.reserved FROM skus k WHERE k.sku = line.sku));
        RAISE SQLSTATE 'SH409';
      END IF;
      -- ...nor a location's `reserved` above its `total` (the promise per location), at each
      -- location Redis allocated the line to (p_allocations[n]: [{"locationId", "quantity"}], in
      -- the order its units were taken; none given: `default` whole). They must add up to the line.
      IF (SELECT COALESCE(sum((a->>'quantity')::integer), line.quantity)
            FROM jsonb_array_elements(p_allocations->(line.n::integer - 1)) AS a) <> line.quantity THEN
        RAISE EXCEPTION 'stockhold_hold: the allocation of % does not add up to %', line.sku, line.quantity
          USING ERRCODE = '22023';
      END IF;
      FOR part IN SELECT COALESCE(a.value->>'locationId', 'default') AS location_id,
                         COALESCE((a.value->>'quantity')::integer, line.quantity) AS quantity, a.position
                    FROM (SELECT value, ordinality AS position
                            FROM jsonb_array_elements(COALESCE(NULLIF(p_allocations->(line.n::integer - 1), '[]'::jsonb),
                                                               '[{}]'::jsonb)) WITH ORDINALITY) a LOOP
        UPDATE stock_levels SET reserved = reserved + part.quantity
         WHERE sku = line.sku AND location_id = part.location_id AND reserved + part.quantity <= total;
        IF NOT FOUND THEN
          refusal := jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', line.sku, 'requested', line.quantity,
                                        'locationId', part.location_id,
                                        'available', COALESCE((SELECT GREATEST(v.total - v.reserved, 0) FROM stock_levels v
                                                                WHERE v.sku = line.sku AND v.location_id = part.location_id), 0));
          RAISE SQLSTATE 'SH409';
        END IF;
        INSERT INTO reservation_allocations (reservation_id, sku, location_id, position, quantity)
        VALUES (p_id, line.sku, part.location_id, part.position, part.quantity);
      END LOOP;
      before := before || jsonb_build_object(line.sku, moved.total - moved.reserved + line.quantity);
      moved_rows := moved_rows || moved;
      -- ...nor a customer past the SKU's limit, counting, under the SKU's lock, what it holds and
      -- bought (sold minus returned) by its reservation lines; this reservation's own never count.
      IF moved.max_per_customer IS NOT NULL THEN
        SELECT COALESCE(sum(CASE WHEN r.status = 'HELD' THEN x.quantity ELSE 0 END), 0) AS held,
               COALESCE(sum(x.committed_quantity - x.returned_quantity), 0) AS bought
          INTO counts
          FROM reservations r JOIN reservation_lines x ON x.reservation_id = r.id
         WHERE r.customer_id = p_customer AND x.sku = line.sku AND r.id <> p_id;
        IF counts.held + counts.bought + line.quantity > moved.max_per_customer THEN
          refusal := jsonb_build_object('refusal', 'CUSTOMER_LIMIT_EXCEEDED', 'sku', line.sku,
                                        'limit', moved.max_per_customer, 'held', counts.held, 'bought', counts.bought,
                                        'requested', line.quantity);
          RAISE SQLSTATE 'SH409';
        END IF;
      END IF;
    END LOOP;
  EXCEPTION WHEN SQLSTATE 'SH409' THEN
    RETURN refusal;
  END;
  -- Its events, under the SKUs' locks (as stockhold_change_events orders them): reservation.held,
  -- then each SKU's threshold crossings, from the rows the UPDATEs returned.
  IF p_events THEN
    INSERT INTO events (type, skus, data)
    VALUES ('reservation.held', ARRAY(SELECT m.sku FROM unnest(moved_rows) AS m), res_view);
    FOREACH moved IN ARRAY moved_rows LOOP
      FOREACH crossing IN ARRAY stockhold_threshold_crossings((before->>moved.sku)::bigint, moved.total - moved.reserved,
                                                              moved.low_stock_threshold) LOOP
        INSERT INTO events (type, skus, data) VALUES (crossing, ARRAY[moved.sku], stockhold_stock_view(moved));
      END LOOP;
    END LOOP;
  END IF;
  RETURN jsonb_build_object('outcome', 'held');
END;
$$;

-- stockhold_sell: the first allocations sold first, a `sale` per location; answers each line's
-- sales ({id, locationId, units}) where it answered one movementId.
CREATE OR REPLACE FUNCTION stockhold_sell(p_id text, p_skus text[], p_quantities integer[], p_payment text, p_events boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  row_status text;
  customer text;
  line record;
  moved skus;
  moved_id bigint;
  moved_at timestamptz;
  before jsonb := '{}'::jsonb;
  movements jsonb := '[]'::jsonb;
  items jsonb := '[]'::jsonb;
  refusal jsonb;
  part record;
  left_units integer;
  take integer;
  sales jsonb;
BEGIN
  SELECT status, customer_id INTO row_status, customer FROM reservations WHERE id = p_id FOR UPDATE;
  IF row_status IS NULL THEN
    RETURN jsonb_build_object('refusal', 'NOT_FOUND');
  END IF;
  IF row_status = 'COMMITTED' THEN
    -- A retry: the sale is recorded, and so are its events.
    SELECT COALESCE(jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity,
                                                  'committedQuantity', l.committed_quantity,
                                                  'returnedQuantity', l.returned_quantity,
                                                  'allocations', (SELECT jsonb_agg(jsonb_build_object('locationId', a.location_id, 'quantity', a.quantity,
                                                                       'committedQuantity', a.committed_quantity) ORDER BY a.position)
                                                     FROM reservation_allocations a WHERE a.reservation_id = p_id AND a.sku = l.sku),
                                                  'sales', COALESCE((SELECT jsonb_agg(jsonb_build_object('id', m.id::text, 'locationId', m.location_id,
                                                                                                         'units', -m.delta) ORDER BY m.id)
                                                                       FROM stock_movements m
                                                                      WHERE m.reservation_id = l.reservation_id AND m.sku = l.sku
                                                                        AND m.kind = 'sale'), '[]'::jsonb))
                              ORDER BY l.sku COLLATE "C"), '[]')
      INTO items
      FROM reservation_lines l
     WHERE l.reservation_id = p_id;
    RETURN jsonb_build_object('outcome', 'repeat', 'customerId', customer, 'items', items);
  END IF;
  IF row_status <> 'HELD' THEN
    RETURN jsonb_build_object('refusal', 'NOT_HELD', 'status', row_status);
  END IF;
  FOR line IN SELECT w.sku, w.quantity, COALESCE(l.quantity, 0) AS held
                FROM unnest(p_skus, p_quantities) WITH ORDINALITY AS w (sku, quantity, n)
                LEFT JOIN reservation_lines l ON l.reservation_id = p_id AND l.sku = w.sku
               ORDER BY w.n LOOP
    IF line.quantity > line.held THEN
      RETURN jsonb_build_object('refusal', 'QUANTITY_EXCEEDS_HOLD', 'sku', line.sku, 'requested', line.quantity, 'held', line.held);
    END IF;
  END LOOP;
  BEGIN
    UPDATE reservations SET status = 'COMMITTED', payment_id = p_payment, updated_at = now() WHERE id = p_id;
    FOR line IN SELECT * FROM stockhold_sale_lines(p_id, p_skus, p_quantities) LOOP
      -- The whole hold leaves `reserved`: the sold units with the sale, the rest released. The
      -- total must cover the sale (only a hold PostgreSQL never recorded could make it not).
      UPDATE skus SET total = total - line.selling, reserved = reserved - line.quantity,
                      updated_at = CASE WHEN line.selling > 0 THEN now() ELSE updated_at END
       WHERE sku = line.sku AND total >= line.selling
      RETURNING * INTO moved;
      IF NOT FOUND THEN
        refusal := jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', line.sku, 'requested', line.selling,
                                      'available', (SELECT k.total FROM skus k WHERE k.sku = line.sku));
        RAISE SQLSTATE 'SH409';
      END IF;
      before := before || jsonb_build_object(line.sku, (moved.total + line.selling) - (moved.reserved + line.quantity));
      -- Each allocation leaves its location's `reserved`; the sale is taken from the first
      -- allocations first (contract v3), one `sale` movement per location it takes units from,
      -- which lowers that location's `total` (stock_levels_follow_movements).
      UPDATE stock_levels v SET reserved = v.reserved - a.quantity
        FROM reservation_allocations a
       WHERE a.reservation_id = p_id AND a.sku = line.sku AND v.sku = a.sku AND v.location_id = a.location_id;
      left_units := line.selling;
      sales := '[]'::jsonb;
      FOR part IN SELECT a.location_id, a.quantity FROM reservation_allocations a
                   WHERE a.reservation_id = p_id AND a.sku = line.sku ORDER BY a.position LOOP
        take := LEAST(part.quantity, left_units);
        left_units := left_units - take;
        UPDATE reservation_allocations SET committed_quantity = take
         WHERE reservation_id = p_id AND sku = line.sku AND location_id = part.location_id;
        IF take > 0 THEN
          INSERT INTO stock_movements (sku, kind, delta, reservation_id, location_id)
          VALUES (line.sku, 'sale', -take, p_id, part.location_id)
          RETURNING id, at INTO moved_id, moved_at;
          movements := movements || jsonb_build_array(jsonb_build_object('sku', line.sku, 'id', moved_id::text, 'kind', 'sale',
                                                                         'delta', -take, 'reservationId', p_id,
                                                                         'at', stockhold_iso(moved_at))
                                                      || CASE WHEN part.location_id <> 'default'
                                                              THEN jsonb_build_object('locationId', part.location_id)
                                                              ELSE '{}'::jsonb END);
          sales := sales || jsonb_build_array(jsonb_build_object('id', moved_id::text, 'locationId', part.location_id,
                                                                 'units', take));
        END IF;
      END LOOP;
      UPDATE reservation_lines SET committed_quantity = line.selling WHERE reservation_id = p_id AND sku = line.sku;
      items := items || jsonb_build_array(jsonb_build_object('sku', line.sku, 'quantity', line.quantity,
                                                             'committedQuantity', line.selling,
                                                             'returnedQuantity', line.returned_quantity,
                                                             'allocations', (SELECT jsonb_agg(jsonb_build_object('locationId', a.location_id, 'quantity', a.quantity,
                                                                       'committedQuantity', a.committed_quantity) ORDER BY a.position)
                                                     FROM reservation_allocations a WHERE a.reservation_id = p_id AND a.sku = line.sku),
                                                             'sales', sales));
    END LOOP;
  EXCEPTION WHEN SQLSTATE 'SH409' THEN
    RETURN refusal;
  END;
  IF p_events THEN
    PERFORM stockhold_change_events(before, movements, 'reservation.committed', p_id);
  END IF;
  RETURN jsonb_build_object('outcome', 'sold', 'customerId', customer, 'items', items);
END;
$$;


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

-- Down Migration

DROP FUNCTION stockhold_hold(text, text, timestamptz, text[], integer[], boolean, jsonb);
ALTER TABLE reservation_allocations DROP COLUMN returned_quantity;
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_transfer_check;
ALTER TABLE stock_movements DROP COLUMN transfer_id;
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_kind_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_kind_check
  CHECK (kind IN ('initial', 'restock', 'adjustment', 'sale', 'return'));
DROP INDEX stock_movements_one_sale_per_line;
CREATE UNIQUE INDEX stock_movements_one_sale_per_line ON stock_movements (reservation_id, sku) WHERE kind = 'sale';
DROP INDEX stock_movements_one_initial_per_sku;
CREATE UNIQUE INDEX stock_movements_one_initial_per_sku ON stock_movements (sku) WHERE kind = 'initial';

-- 1765600000000's versions of the functions, as they were.
CREATE FUNCTION stockhold_hold(p_id text, p_customer text, p_expires_at timestamptz, p_skus text[],
                                          p_quantities integer[], p_events boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  row_status text;
  line record;
  moved skus;
  before jsonb := '{}'::jsonb;
  moved_rows skus[] := '{}';
  counts record;
  refusal jsonb;
  stamps record;
  res_view jsonb;
  crossing text;
BEGIN
  -- What needs no lock: every SKU exists, and a limited one is held for a customer.
  FOR line IN SELECT l.sku, k.sku AS known, k.max_per_customer
                FROM unnest(p_skus) WITH ORDINALITY AS l (sku, n) LEFT JOIN skus k USING (sku) ORDER BY l.n LOOP
    IF line.known IS NULL THEN
      RETURN jsonb_build_object('refusal', 'SKU_NOT_FOUND', 'sku', line.sku);
    END IF;
    IF line.max_per_customer IS NOT NULL AND p_customer IS NULL THEN
      RETURN jsonb_build_object('refusal', 'CUSTOMER_REQUIRED', 'sku', line.sku);
    END IF;
  END LOOP;
  -- The reservation's row first.
  SELECT status INTO row_status FROM reservations WHERE id = p_id FOR UPDATE;
  IF row_status IS NOT NULL AND row_status <> 'REJECTED' THEN
    IF row_status <> 'HELD' THEN
      RETURN jsonb_build_object('refusal', 'FINISHED');
    END IF;
    -- A retry finds its own lines; another cart under the same id is a conflict.
    IF (SELECT count(*) FROM reservation_lines WHERE reservation_id = p_id) = cardinality(p_skus)
       AND NOT EXISTS (SELECT 1 FROM unnest(p_skus, p_quantities) AS l (sku, quantity)
                        WHERE NOT EXISTS (SELECT 1 FROM reservation_lines x
                                           WHERE x.reservation_id = p_id AND x.sku = l.sku AND x.quantity = l.quantity)) THEN
      RETURN jsonb_build_object('outcome', 'repeat');
    END IF;
    RETURN jsonb_build_object('refusal', 'OTHER_CART');
  END IF;
  BEGIN
    IF row_status IS NULL THEN
      INSERT INTO reservations (id, status, customer_id, expires_at) VALUES (p_id, 'HELD', p_customer, p_expires_at)
      ON CONFLICT (id) DO NOTHING
      RETURNING created_at, updated_at INTO stamps;
      IF NOT FOUND THEN
        -- Another hold of this id committed meanwhile: decide again against it (a repeat, another
        -- cart, or a REJECTED run). Nothing is written yet.
        RETURN stockhold_hold(p_id, p_customer, p_expires_at, p_skus, p_quantities, p_events);
      END IF;
    ELSE
      -- A REJECTED reservation (an earlier run gave up while the stores were down) holds again.
      UPDATE reservations SET status = 'HELD', customer_id = p_customer, expires_at = p_expires_at, reason = NULL,
                              updated_at = now()
       WHERE id = p_id
      RETURNING created_at, updated_at INTO stamps;
      DELETE FROM reservation_lines WHERE reservation_id = p_id;
    END IF;
    INSERT INTO reservation_lines (reservation_id, sku, quantity)
    SELECT p_id, l.sku, l.quantity FROM unnest(p_skus, p_quantities) AS l (sku, quantity);
    -- Its event's view (docs/API.md, as stockhold_reservation_view has it) from what was just
    -- written, before any SKU is locked.
    IF p_events THEN
      res_view := jsonb_build_object(
        'reservationId', p_id, 'status', 'HELD',
        'items', (SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity, 'committedQuantity', 0,
                                                      'returnedQuantity', 0) ORDER BY l.sku COLLATE "C")
                    FROM unnest(p_skus, p_quantities) AS l (sku, quantity)),
        'customerId', p_customer, 'expiresAt', stockhold_iso(p_expires_at),
        'createdAt', stockhold_iso(stamps.created_at), 'updatedAt', stockhold_iso(stamps.updated_at),
        'workflowId', 'reservation-' || p_id);
    END IF;
    -- Each SKU's row last, in byte order, by the UPDATE that checks the promise: PostgreSQL's last
    -- word, whatever Redis answered (it may have lost another buyer's hold), is that a line may not
    -- take `reserved` above `total`...
    FOR line IN SELECT l.sku, l.quantity FROM unnest(p_skus, p_quantities) AS l (sku, quantity)
                 ORDER BY l.sku COLLATE "C" LOOP
      UPDATE skus SET reserved = reserved + line.quantity
       WHERE sku = line.sku AND reserved + line.quantity <= total
      RETURNING * INTO moved;
      IF NOT FOUND THEN
        refusal := jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', line.sku, 'requested', line.quantity,
                                      'available', (SELECT k.total - k.reserved FROM skus k WHERE k.sku = line.sku));
        RAISE SQLSTATE 'SH409';
      END IF;
      -- ...nor a location's `reserved` above its `total` (the promise per location). Until Redis
      -- allocates over locations, a line is allocated whole at `default`.
      UPDATE stock_levels SET reserved = reserved + line.quantity
       WHERE sku = line.sku AND location_id = 'default' AND reserved + line.quantity <= total;
      IF NOT FOUND THEN
        refusal := jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', line.sku, 'requested', line.quantity,
                                      'available', (SELECT GREATEST(v.total - v.reserved, 0) FROM stock_levels v
                                                     WHERE v.sku = line.sku AND v.location_id = 'default'));
        RAISE SQLSTATE 'SH409';
      END IF;
      INSERT INTO reservation_allocations (reservation_id, sku, location_id, position, quantity)
      VALUES (p_id, line.sku, 'default', 1, line.quantity);
      before := before || jsonb_build_object(line.sku, moved.total - moved.reserved + line.quantity);
      moved_rows := moved_rows || moved;
      -- ...nor a customer past the SKU's limit, counting, under the SKU's lock, what it holds and
      -- bought (sold minus returned) by its reservation lines; this reservation's own never count.
      IF moved.max_per_customer IS NOT NULL THEN
        SELECT COALESCE(sum(CASE WHEN r.status = 'HELD' THEN x.quantity ELSE 0 END), 0) AS held,
               COALESCE(sum(x.committed_quantity - x.returned_quantity), 0) AS bought
          INTO counts
          FROM reservations r JOIN reservation_lines x ON x.reservation_id = r.id
         WHERE r.customer_id = p_customer AND x.sku = line.sku AND r.id <> p_id;
        IF counts.held + counts.bought + line.quantity > moved.max_per_customer THEN
          refusal := jsonb_build_object('refusal', 'CUSTOMER_LIMIT_EXCEEDED', 'sku', line.sku,
                                        'limit', moved.max_per_customer, 'held', counts.held, 'bought', counts.bought,
                                        'requested', line.quantity);
          RAISE SQLSTATE 'SH409';
        END IF;
      END IF;
    END LOOP;
  EXCEPTION WHEN SQLSTATE 'SH409' THEN
    RETURN refusal;
  END;
  -- Its events, under the SKUs' locks (as stockhold_change_events orders them): reservation.held,
  -- then each SKU's threshold crossings, from the rows the UPDATEs returned.
  IF p_events THEN
    INSERT INTO events (type, skus, data)
    VALUES ('reservation.held', ARRAY(SELECT m.sku FROM unnest(moved_rows) AS m), res_view);
    FOREACH moved IN ARRAY moved_rows LOOP
      FOREACH crossing IN ARRAY stockhold_threshold_crossings((before->>moved.sku)::bigint, moved.total - moved.reserved,
                                                              moved.low_stock_threshold) LOOP
        INSERT INTO events (type, skus, data) VALUES (crossing, ARRAY[moved.sku], stockhold_stock_view(moved));
      END LOOP;
    END LOOP;
  END IF;
  RETURN jsonb_build_object('outcome', 'held');
END;
$$;

CREATE OR REPLACE FUNCTION stockhold_release(p_id text, p_status text, p_reason text, p_events boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  row_status text;
  line record;
  moved skus;
  before jsonb := '{}'::jsonb;
BEGIN
  SELECT status INTO row_status FROM reservations WHERE id = p_id FOR UPDATE;
  IF row_status IS NULL OR row_status NOT IN ('PENDING', 'HELD') THEN
    RETURN row_status;
  END IF;
  UPDATE reservations SET status = p_status, reason = COALESCE(p_reason, reason), updated_at = now() WHERE id = p_id;
  IF row_status = 'HELD' THEN
    FOR line IN SELECT l.sku, l.quantity FROM reservation_lines l WHERE l.reservation_id = p_id ORDER BY l.sku COLLATE "C" LOOP
      UPDATE skus SET reserved = reserved - line.quantity WHERE sku = line.sku RETURNING * INTO moved;
      UPDATE stock_levels v SET reserved = v.reserved - a.quantity
        FROM reservation_allocations a
       WHERE a.reservation_id = p_id AND a.sku = line.sku AND v.sku = a.sku AND v.location_id = a.location_id;
      before := before || jsonb_build_object(line.sku, moved.total - moved.reserved - line.quantity);
    END LOOP;
  END IF;
  IF p_events THEN
    PERFORM stockhold_change_events(before, NULL,
                                    CASE p_status WHEN 'CANCELLED' THEN 'reservation.cancelled'
                                                  WHEN 'EXPIRED' THEN 'reservation.expired' END, p_id);
  END IF;
  RETURN p_status;
END;
$$;

CREATE OR REPLACE FUNCTION stockhold_sell(p_id text, p_skus text[], p_quantities integer[], p_payment text, p_events boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  row_status text;
  customer text;
  line record;
  moved skus;
  moved_id bigint;
  moved_at timestamptz;
  before jsonb := '{}'::jsonb;
  movements jsonb := '[]'::jsonb;
  items jsonb := '[]'::jsonb;
  refusal jsonb;
  sold_at text;
BEGIN
  SELECT status, customer_id INTO row_status, customer FROM reservations WHERE id = p_id FOR UPDATE;
  IF row_status IS NULL THEN
    RETURN jsonb_build_object('refusal', 'NOT_FOUND');
  END IF;
  IF row_status = 'COMMITTED' THEN
    -- A retry: the sale is recorded, and so are its events.
    SELECT COALESCE(jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity,
                                                  'committedQuantity', l.committed_quantity,
                                                  'returnedQuantity', l.returned_quantity,
                                                  'movementId', COALESCE(m.id::text, '0')) ORDER BY l.sku COLLATE "C"), '[]')
      INTO items
      FROM reservation_lines l
      LEFT JOIN stock_movements m ON m.reservation_id = l.reservation_id AND m.sku = l.sku AND m.kind = 'sale'
     WHERE l.reservation_id = p_id;
    RETURN jsonb_build_object('outcome', 'repeat', 'customerId', customer, 'items', items);
  END IF;
  IF row_status <> 'HELD' THEN
    RETURN jsonb_build_object('refusal', 'NOT_HELD', 'status', row_status);
  END IF;
  FOR line IN SELECT w.sku, w.quantity, COALESCE(l.quantity, 0) AS held
                FROM unnest(p_skus, p_quantities) WITH ORDINALITY AS w (sku, quantity, n)
                LEFT JOIN reservation_lines l ON l.reservation_id = p_id AND l.sku = w.sku
               ORDER BY w.n LOOP
    IF line.quantity > line.held THEN
      RETURN jsonb_build_object('refusal', 'QUANTITY_EXCEEDS_HOLD', 'sku', line.sku, 'requested', line.quantity, 'held', line.held);
    END IF;
  END LOOP;
  BEGIN
    UPDATE reservations SET status = 'COMMITTED', payment_id = p_payment, updated_at = now() WHERE id = p_id;
    FOR line IN SELECT * FROM stockhold_sale_lines(p_id, p_skus, p_quantities) LOOP
      -- The whole hold leaves `reserved`: the sold units with the sale, the rest released. The
      -- total must cover the sale (only a hold PostgreSQL never recorded could make it not).
      UPDATE skus SET total = total - line.selling, reserved = reserved - line.quantity,
                      updated_at = CASE WHEN line.selling > 0 THEN now() ELSE updated_at END
       WHERE sku = line.sku AND total >= line.selling
      RETURNING * INTO moved;
      IF NOT FOUND THEN
        refusal := jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', line.sku, 'requested', line.selling,
                                      'available', (SELECT k.total FROM skus k WHERE k.sku = line.sku));
        RAISE SQLSTATE 'SH409';
      END IF;
      before := before || jsonb_build_object(line.sku, (moved.total + line.selling) - (moved.reserved + line.quantity));
      -- Each allocation leaves its location's `reserved`; the sale is taken from the first
      -- allocation (every line has one, at `default`, until Redis allocates over locations), whose
      -- location's `total` its movement lowers (stock_levels_follow_movements).
      UPDATE stock_levels v SET reserved = v.reserved - a.quantity
        FROM reservation_allocations a
       WHERE a.reservation_id = p_id AND a.sku = line.sku AND v.sku = a.sku AND v.location_id = a.location_id;
      UPDATE reservation_allocations SET committed_quantity = line.selling
       WHERE reservation_id = p_id AND sku = line.sku AND position = 1
      RETURNING location_id INTO sold_at;
      moved_id := NULL;
      IF line.selling > 0 THEN
        INSERT INTO stock_movements (sku, kind, delta, reservation_id, location_id)
        VALUES (line.sku, 'sale', -line.selling, p_id, COALESCE(sold_at, 'default'))
        RETURNING id, at INTO moved_id, moved_at;
        movements := movements || jsonb_build_array(jsonb_build_object('sku', line.sku, 'id', moved_id::text, 'kind', 'sale',
                                                                       'delta', -line.selling, 'reservationId', p_id,
                                                                       'at', stockhold_iso(moved_at)));
      END IF;
      UPDATE reservation_lines SET committed_quantity = line.selling WHERE reservation_id = p_id AND sku = line.sku;
      items := items || jsonb_build_array(jsonb_build_object('sku', line.sku, 'quantity', line.quantity,
                                                             'committedQuantity', line.selling,
                                                             'returnedQuantity', line.returned_quantity,
                                                             'movementId', COALESCE(moved_id::text, '0')));
    END LOOP;
  EXCEPTION WHEN SQLSTATE 'SH409' THEN
    RETURN refusal;
  END;
  IF p_events THEN
    PERFORM stockhold_change_events(before, movements, 'reservation.committed', p_id);
  END IF;
  RETURN jsonb_build_object('outcome', 'sold', 'customerId', customer, 'items', items);
END;
$$;

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
    VALUES ('stock.changed', ARRAY[s.sku], stockhold_stock_view(s) || jsonb_build_object('movement', m - 'sku'));
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

