-- Up Migration

-- The hot SKU's row lock taken last (issue 17 item 4). Migration 1765300000000 made a hold, a
-- release and a sale one function call each, but each still locked its SKUs first and then did
-- all its work under those locks: the reservation's row and lines, the customer's counts, the
-- view its event carries. One hot SKU took at most ~600 holds/s (bench:holds), a fifth of a bare
-- conditional UPDATE. Now each locks its reservation's row first, writes what belongs to the
-- reservation alone, and only then takes each SKU's row with one conditional UPDATE (the check
-- of the promise is that UPDATE's WHERE), in byte order of the SKU; what must be decided under
-- the SKU's lock (the customer's allowance, the events whose seq follows the commit order per
-- SKU) comes after it. A refusal found at the SKU rolls back what the function wrote before it
-- (a subtransaction), so a refused call still writes nothing.
--
-- The one lock order of every writer is now: the reservation's row, then the status counter's
-- shard row (its trigger fires on the reservation's INSERT or UPDATE), then the SKUs' rows in
-- byte order. Writers of SKUs alone (restock, adjustment, settings, the reconciler's recompute)
-- take only the last. SKUs are locked FOR NO KEY UPDATE (what an UPDATE of a non-key column
-- takes), so the foreign-key checks of lines and movements that reference a hot SKU never wait
-- on it.
--
-- The foreign key from a reservation's lines to their SKUs is checked at COMMIT: a line is
-- written before its SKU's row is locked, and an immediate check (FOR KEY SHARE on the SKU's row)
-- by every hold in flight made the hot row a MultiXact of all of them (seen in pg_stat_activity as
-- MultiXactMember waits). At COMMIT the hold holds the row itself, and the check costs nothing.
-- stockhold_hold checks that every SKU exists before it writes.
ALTER TABLE reservation_lines ALTER CONSTRAINT reservation_lines_sku_fkey DEFERRABLE INITIALLY DEFERRED;

-- The helpers that had a FROM clause are PL/pgSQL now: PL/pgSQL keeps its statements' plans for
-- the session, where a non-inlined SQL-language function plans its query again on every call.

CREATE OR REPLACE FUNCTION stockhold_reservation_view(p_id text) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
  res_view jsonb;
BEGIN
  SELECT jsonb_build_object(
           'reservationId', r.id, 'status', r.status,
           'items', COALESCE((SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity,
                                                                  'committedQuantity', l.committed_quantity,
                                                                  'returnedQuantity', l.returned_quantity)
                                               ORDER BY l.sku COLLATE "C")
                                FROM reservation_lines l WHERE l.reservation_id = r.id), '[]'::jsonb),
           'customerId', r.customer_id, 'expiresAt', stockhold_iso(r.expires_at),
           'createdAt', stockhold_iso(r.created_at), 'updatedAt', stockhold_iso(r.updated_at),
           'workflowId', 'reservation-' || r.id)
    INTO res_view
    FROM reservations r WHERE r.id = p_id;
  RETURN res_view;
END;
$$;

CREATE OR REPLACE FUNCTION stockhold_lock_skus(p_skus text[]) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  before jsonb;
BEGIN
  SELECT COALESCE(jsonb_object_agg(l.sku, l.total - l.reserved), '{}'::jsonb) INTO before
    FROM (SELECT sku, total, reserved FROM skus WHERE sku = ANY(p_skus) ORDER BY sku COLLATE "C" FOR NO KEY UPDATE) l;
  RETURN before;
END;
$$;

-- A reservation's row locked, then its SKUs' rows (the one lock order: see above). Returns the
-- SKUs' `available` before the change ({sku: available}) and the reservation's status (NULL: none).
-- With the reservation's row locked, its lines cannot change.
CREATE OR REPLACE FUNCTION stockhold_lock_reservation(p_id text, OUT before jsonb, OUT status text) LANGUAGE plpgsql AS $$
BEGIN
  SELECT r.status INTO status FROM reservations r WHERE r.id = p_id FOR UPDATE;
  before := stockhold_lock_skus(ARRAY(SELECT sku FROM reservation_lines WHERE reservation_id = p_id));
END;
$$;

CREATE OR REPLACE FUNCTION stockhold_sale_lines(p_id text, p_skus text[], p_quantities integer[])
RETURNS TABLE (sku text, quantity integer, returned_quantity integer, total bigint, selling integer)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
  SELECT l.sku, l.quantity, l.returned_quantity, k.total,
         CASE WHEN p_skus IS NULL THEN l.quantity
              ELSE COALESCE((SELECT w.quantity FROM unnest(p_skus, p_quantities) AS w (sku, quantity) WHERE w.sku = l.sku), 0) END
    FROM reservation_lines l JOIN skus k ON k.sku = l.sku
   WHERE l.reservation_id = p_id ORDER BY l.sku COLLATE "C";
END;
$$;

-- A hold, once Redis applied it (contract as in 1765300000000): {"outcome": "held" | "repeat"}, or
-- {"refusal": code, ...} having written nothing.
CREATE OR REPLACE FUNCTION stockhold_hold(p_id text, p_customer text, p_expires_at timestamptz, p_skus text[],
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

-- A reservation's end without a sale (contract as in 1765300000000): the reservation's row, then
-- each SKU's row giving the hold back, in byte order.
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

-- The sale of a HELD reservation (contract as in 1765300000000): the reservation's row, its
-- lines checked, then each SKU's row by one UPDATE that sells and leaves `reserved`, in byte order.
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
      moved_id := NULL;
      IF line.selling > 0 THEN
        INSERT INTO stock_movements (sku, kind, delta, reservation_id) VALUES (line.sku, 'sale', -line.selling, p_id)
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

-- Down Migration
-- The versions of 1765300000000, as they were.
ALTER TABLE reservation_lines ALTER CONSTRAINT reservation_lines_sku_fkey NOT DEFERRABLE;
CREATE OR REPLACE FUNCTION stockhold_reservation_view(p_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
           'reservationId', r.id, 'status', r.status,
           'items', COALESCE((SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity,
                                                                  'committedQuantity', l.committed_quantity,
                                                                  'returnedQuantity', l.returned_quantity)
                                               ORDER BY l.sku COLLATE "C")
                                FROM reservation_lines l WHERE l.reservation_id = r.id), '[]'::jsonb),
           'customerId', r.customer_id, 'expiresAt', stockhold_iso(r.expires_at),
           'createdAt', stockhold_iso(r.created_at), 'updatedAt', stockhold_iso(r.updated_at),
           'workflowId', 'reservation-' || r.id)
    FROM reservations r WHERE r.id = p_id
$$;

CREATE OR REPLACE FUNCTION stockhold_lock_skus(p_skus text[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT COALESCE(jsonb_object_agg(l.sku, l.total - l.reserved), '{}'::jsonb)
    FROM (SELECT sku, total, reserved FROM skus WHERE sku = ANY(p_skus) ORDER BY sku COLLATE "C" FOR UPDATE) l
$$;

CREATE OR REPLACE FUNCTION stockhold_hold(p_id text, p_customer text, p_expires_at timestamptz, p_skus text[],
                               p_quantities integer[], p_events boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  before jsonb;
  row_status text;
  i integer;
  n integer := cardinality(p_skus);
  s record;
  counts record;
BEGIN
  -- The SKUs' locks first (the order of every writer of events), then the reservation's row.
  before := stockhold_lock_skus(p_skus);
  FOR i IN 1..n LOOP
    IF NOT before ? p_skus[i] THEN
      RETURN jsonb_build_object('refusal', 'SKU_NOT_FOUND', 'sku', p_skus[i]);
    END IF;
  END LOOP;
  SELECT status INTO row_status FROM reservations WHERE id = p_id FOR UPDATE;
  IF FOUND AND row_status <> 'REJECTED' THEN
    IF row_status <> 'HELD' THEN
      RETURN jsonb_build_object('refusal', 'FINISHED');
    END IF;
    -- A retry finds its own lines; another cart under the same id is a conflict.
    IF (SELECT count(*) FROM reservation_lines WHERE reservation_id = p_id) = n
       AND NOT EXISTS (SELECT 1 FROM unnest(p_skus, p_quantities) AS l (sku, quantity)
                        WHERE NOT EXISTS (SELECT 1 FROM reservation_lines x
                                           WHERE x.reservation_id = p_id AND x.sku = l.sku AND x.quantity = l.quantity)) THEN
      RETURN jsonb_build_object('outcome', 'repeat');
    END IF;
    RETURN jsonb_build_object('refusal', 'OTHER_CART');
  END IF;
  -- PostgreSQL's last word on the promise, on the rows locked above: whatever Redis answered (it
  -- may have lost another buyer's hold), a line may not take `reserved` above `total`...
  FOR s IN SELECT k.sku, k.total, k.reserved, k.max_per_customer, l.quantity
             FROM unnest(p_skus, p_quantities) WITH ORDINALITY AS l (sku, quantity, n) JOIN skus k USING (sku)
            ORDER BY l.n LOOP
    IF s.reserved + s.quantity > s.total THEN
      RETURN jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', s.sku, 'requested', s.quantity,
                                'available', s.total - s.reserved);
    END IF;
  END LOOP;
  -- ...nor a customer past a SKU's limit, counting what it holds and bought (sold minus returned)
  -- by its reservation lines; this reservation's own old lines (a REJECTED run's) never count.
  FOR s IN SELECT k.sku, k.max_per_customer, l.quantity
             FROM unnest(p_skus, p_quantities) WITH ORDINALITY AS l (sku, quantity, n) JOIN skus k USING (sku)
            WHERE k.max_per_customer IS NOT NULL ORDER BY l.n LOOP
    IF p_customer IS NULL THEN
      RETURN jsonb_build_object('refusal', 'CUSTOMER_REQUIRED', 'sku', s.sku);
    END IF;
    SELECT COALESCE(sum(CASE WHEN r.status = 'HELD' THEN x.quantity ELSE 0 END), 0) AS held,
           COALESCE(sum(x.committed_quantity - x.returned_quantity), 0) AS bought
      INTO counts
      FROM reservations r JOIN reservation_lines x ON x.reservation_id = r.id
     WHERE r.customer_id = p_customer AND x.sku = s.sku AND r.id <> p_id;
    IF counts.held + counts.bought + s.quantity > s.max_per_customer THEN
      RETURN jsonb_build_object('refusal', 'CUSTOMER_LIMIT_EXCEEDED', 'sku', s.sku, 'limit', s.max_per_customer,
                                'held', counts.held, 'bought', counts.bought, 'requested', s.quantity);
    END IF;
  END LOOP;
  INSERT INTO reservations (id, status, customer_id, expires_at) VALUES (p_id, 'HELD', p_customer, p_expires_at)
  ON CONFLICT (id) DO UPDATE SET status = 'HELD', customer_id = EXCLUDED.customer_id, expires_at = EXCLUDED.expires_at,
                                 reason = NULL, updated_at = now()
   WHERE reservations.status = 'REJECTED';
  IF NOT FOUND THEN
    -- Inserted meanwhile under another cart (other SKUs, so other locks): not this one's.
    RETURN jsonb_build_object('refusal', 'OTHER_CART');
  END IF;
  DELETE FROM reservation_lines WHERE reservation_id = p_id;
  INSERT INTO reservation_lines (reservation_id, sku, quantity)
  SELECT p_id, l.sku, l.quantity FROM unnest(p_skus, p_quantities) AS l (sku, quantity);
  UPDATE skus k SET reserved = k.reserved + l.quantity
    FROM unnest(p_skus, p_quantities) AS l (sku, quantity) WHERE k.sku = l.sku;
  IF p_events THEN
    PERFORM stockhold_change_events(before, NULL, 'reservation.held', p_id);
  END IF;
  RETURN jsonb_build_object('outcome', 'held');
END;
$$;

CREATE OR REPLACE FUNCTION stockhold_lock_reservation(p_id text, OUT before jsonb, OUT status text) LANGUAGE plpgsql AS $$
DECLARE
  added text[];
BEGIN
  before := stockhold_lock_skus(ARRAY(SELECT sku FROM reservation_lines WHERE reservation_id = p_id));
  SELECT r.status INTO status FROM reservations r WHERE r.id = p_id FOR UPDATE;
  added := ARRAY(SELECT sku FROM reservation_lines WHERE reservation_id = p_id AND NOT before ? sku);
  IF cardinality(added) > 0 THEN
    before := before || stockhold_lock_skus(added);
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION stockhold_release(p_id text, p_status text, p_reason text, p_events boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  locked record;
BEGIN
  SELECT * INTO locked FROM stockhold_lock_reservation(p_id);
  IF locked.status IS NULL OR locked.status NOT IN ('PENDING', 'HELD') THEN
    RETURN locked.status;
  END IF;
  UPDATE reservations SET status = p_status, reason = COALESCE(p_reason, reason), updated_at = now() WHERE id = p_id;
  IF locked.status = 'HELD' THEN
    UPDATE skus k SET reserved = k.reserved - l.quantity
      FROM reservation_lines l WHERE l.reservation_id = p_id AND k.sku = l.sku;
  END IF;
  IF p_events THEN
    PERFORM stockhold_change_events(locked.before, NULL,
                                    CASE p_status WHEN 'CANCELLED' THEN 'reservation.cancelled'
                                                  WHEN 'EXPIRED' THEN 'reservation.expired' END, p_id);
  END IF;
  RETURN p_status;
END;
$$;

CREATE OR REPLACE FUNCTION stockhold_sale_lines(p_id text, p_skus text[], p_quantities integer[])
RETURNS TABLE (sku text, quantity integer, returned_quantity integer, total bigint, selling integer)
LANGUAGE sql STABLE AS $$
  SELECT l.sku, l.quantity, l.returned_quantity, k.total,
         CASE WHEN p_skus IS NULL THEN l.quantity
              ELSE COALESCE((SELECT w.quantity FROM unnest(p_skus, p_quantities) AS w (sku, quantity) WHERE w.sku = l.sku), 0) END
    FROM reservation_lines l JOIN skus k ON k.sku = l.sku
   WHERE l.reservation_id = p_id ORDER BY l.sku COLLATE "C"
$$;

CREATE OR REPLACE FUNCTION stockhold_sell(p_id text, p_skus text[], p_quantities integer[], p_payment text, p_events boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  locked record;
  customer text;
  line record;
  sold integer;
  moved_id bigint;
  moved_at timestamptz;
  movements jsonb := '[]'::jsonb;
  items jsonb := '[]'::jsonb;
BEGIN
  SELECT * INTO locked FROM stockhold_lock_reservation(p_id);
  IF locked.status IS NULL THEN
    RETURN jsonb_build_object('refusal', 'NOT_FOUND');
  END IF;
  SELECT customer_id INTO customer FROM reservations WHERE id = p_id;
  IF locked.status = 'COMMITTED' THEN
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
  IF locked.status <> 'HELD' THEN
    RETURN jsonb_build_object('refusal', 'NOT_HELD', 'status', locked.status);
  END IF;
  -- Every line checked before anything is written.
  FOR line IN SELECT w.sku, w.quantity, COALESCE(l.quantity, 0) AS held
                FROM unnest(p_skus, p_quantities) WITH ORDINALITY AS w (sku, quantity, n)
                LEFT JOIN reservation_lines l ON l.reservation_id = p_id AND l.sku = w.sku
               ORDER BY w.n LOOP
    IF line.quantity > line.held THEN
      RETURN jsonb_build_object('refusal', 'QUANTITY_EXCEEDS_HOLD', 'sku', line.sku, 'requested', line.quantity, 'held', line.held);
    END IF;
  END LOOP;
  FOR line IN SELECT * FROM stockhold_sale_lines(p_id, p_skus, p_quantities) LOOP
    IF line.selling > line.total THEN
      RETURN jsonb_build_object('refusal', 'INSUFFICIENT_STOCK', 'sku', line.sku, 'requested', line.selling, 'available', line.total);
    END IF;
  END LOOP;
  FOR line IN SELECT * FROM stockhold_sale_lines(p_id, p_skus, p_quantities) LOOP
    sold := line.selling;
    moved_id := NULL;
    IF sold > 0 THEN
      UPDATE skus SET total = total - sold, updated_at = now() WHERE sku = line.sku;
      INSERT INTO stock_movements (sku, kind, delta, reservation_id) VALUES (line.sku, 'sale', -sold, p_id)
      RETURNING id, at INTO moved_id, moved_at;
      movements := movements || jsonb_build_array(jsonb_build_object('sku', line.sku, 'id', moved_id::text, 'kind', 'sale',
                                                                     'delta', -sold, 'reservationId', p_id,
                                                                     'at', stockhold_iso(moved_at)));
    END IF;
    UPDATE reservation_lines SET committed_quantity = sold WHERE reservation_id = p_id AND sku = line.sku;
    items := items || jsonb_build_array(jsonb_build_object('sku', line.sku, 'quantity', line.quantity, 'committedQuantity', sold,
                                                           'returnedQuantity', line.returned_quantity,
                                                           'movementId', COALESCE(moved_id::text, '0')));
  END LOOP;
  -- The whole hold leaves `reserved`: the sold units with the sale, the rest released.
  UPDATE skus k SET reserved = k.reserved - l.quantity FROM reservation_lines l WHERE l.reservation_id = p_id AND k.sku = l.sku;
  UPDATE reservations SET status = 'COMMITTED', payment_id = p_payment, updated_at = now() WHERE id = p_id;
  IF p_events THEN
    PERFORM stockhold_change_events(locked.before, movements, 'reservation.committed', p_id);
  END IF;
  RETURN jsonb_build_object('outcome', 'sold', 'customerId', customer, 'items', items);
END;
$$;
