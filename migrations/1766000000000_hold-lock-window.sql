-- Up Migration

-- stockhold_hold keeps the SKU's row lock for less time (issue 18's figures: a hot SKU's holds
-- 0.82x the code before locations, `BENCH_BASELINE_REV=7f879d9 npm run bench:holds`). The lock is
-- held from the SKU's UPDATE to the commit, so what needs no lock moves before it: each line's
-- allocation is checked and written with the lines, in one statement, and each line's levels
-- move in one UPDATE joined with it instead of a loop of one per location.

CREATE OR REPLACE FUNCTION stockhold_hold(p_id text, p_customer text, p_expires_at timestamptz, p_skus text[],
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
  short_line record;
  moved_levels text[];
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
    -- Each line's allocation as Redis decided it (p_allocations[n]: [{"locationId", "quantity"}] in
    -- the order its units were taken; none given: `default` whole), written before any SKU is
    -- locked: nothing here needs the lock, and the lock is held to the commit. They must add up
    -- to their line.
    INSERT INTO reservation_allocations (reservation_id, sku, location_id, position, quantity)
    SELECT p_id, l.sku, COALESCE(a.value->>'locationId', 'default'), a.position,
           COALESCE((a.value->>'quantity')::integer, l.quantity)
      FROM unnest(p_skus, p_quantities) WITH ORDINALITY AS l (sku, quantity, n)
     CROSS JOIN LATERAL jsonb_array_elements(COALESCE(NULLIF(p_allocations->(l.n::integer - 1), '[]'::jsonb), '[{}]'::jsonb))
           WITH ORDINALITY AS a (value, position);
    SELECT l.sku, l.quantity INTO short_line
      FROM unnest(p_skus, p_quantities) AS l (sku, quantity)
     WHERE l.quantity <> (SELECT sum(x.quantity) FROM reservation_allocations x
                           WHERE x.reservation_id = p_id AND x.sku = l.sku)
     LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'stockhold_hold: the allocation of % does not add up to %', short_line.sku, short_line.quantity
        USING ERRCODE = '22023';
    END IF;
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
      -- location of the line's allocation (written above), in one statement.
      WITH up AS (
        UPDATE stock_levels v SET reserved = v.reserved + x.quantity
          FROM reservation_allocations x
         WHERE x.reservation_id = p_id AND x.sku = line.sku
           AND v.sku = line.sku AND v.location_id = x.location_id AND v.reserved + x.quantity <= v.total
        RETURNING v.location_id)
      SELECT array_agg(up.location_id) INTO moved_levels FROM up;
      IF EXISTS (SELECT 1 FROM reservation_allocations x
                  WHERE x.reservation_id = p_id AND x.sku = line.sku
                    AND x.location_id <> ALL (COALESCE(moved_levels, '{}'))) THEN
        -- The first location in the allocation's order that could not take its part.
        SELECT x.location_id, COALESCE(GREATEST(v.total - v.reserved, 0), 0) AS available INTO part
          FROM reservation_allocations x
          LEFT JOIN stock_levels v ON v.sku = x.sku AND v.location_id = x.location_id
         WHERE x.reservation_id = p_id AND x.sku = line.sku
           AND x.location_id <> ALL (COALESCE(moved_levels, '{}'))
         ORDER BY x.position
         LIMIT 1;
        refusal := jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', line.sku, 'requested', line.quantity,
                                      'locationId', part.location_id, 'available', part.available);
        RAISE SQLSTATE 'SH409';
      END IF;
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

-- Down Migration

-- 1765700000000's version, as it was.
CREATE OR REPLACE FUNCTION stockhold_hold(p_id text, p_customer text, p_expires_at timestamptz, p_skus text[],
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
