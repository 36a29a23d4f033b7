-- Up Migration

-- The reservation's writes under a SKU's row lock, each one function call (issue 17: the hot row
-- held for the server's work only, never across client round trips). A hold, a release and a
-- sale each used to run about nine statements from the service while holding the SKU's row lock,
-- so one SKU took at most ~290 holds/s however fast Redis was. Now the service sends one
-- statement; the function locks, checks, writes and records its events, and the lock goes at its
-- end (the statement is its own transaction). The events of every change are composed here too,
-- by one function (stockhold_change_events) that the service's other writers call as well, so
-- the rules of the outbox (docs/DESIGN.md "Events (outbox)") are written once.

-- A time as the contract writes it: ISO 8601 in UTC with milliseconds (JavaScript's toISOString).
CREATE FUNCTION stockhold_iso(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- A SKU's stock view (docs/API.md), as events carry it.
CREATE FUNCTION stockhold_stock_view(s skus) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('sku', s.sku, 'name', s.name, 'total', s.total, 'reserved', s.reserved,
                            'available', s.total - s.reserved, 'lowStockThreshold', s.low_stock_threshold,
                            'maxPerCustomer', s.max_per_customer)
$$;

-- A reservation's view (docs/API.md), as its events carry it: lines in byte order of the SKU.
CREATE FUNCTION stockhold_reservation_view(p_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
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

-- The threshold events of a change of `available` from `before` to `after`, in the order a reader
-- expects them. Each fires on the crossing only: stock.back_in_stock from 0 (or below) to above
-- 0; stock.low from above the threshold to at or below it (also straight to 0: a subscriber to
-- stock.low alone must still hear that stock ran low); stock.sold_out from above 0 to 0 (or below,
-- which only a lost hold can cause).
CREATE FUNCTION stockhold_threshold_crossings(before bigint, after bigint, threshold integer) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN before <= 0 AND after > 0 THEN 'stock.back_in_stock' END,
    CASE WHEN threshold IS NOT NULL AND before > threshold AND after <= threshold THEN 'stock.low' END,
    CASE WHEN before > 0 AND after <= 0 THEN 'stock.sold_out' END
  ], NULL)
$$;

-- The events of one change, inserted in the caller's transaction in the order a reader expects:
-- each movement's stock.changed (the SKU's view after the change, with the movement), then the
-- reservation's event (p_reservation_type of p_reservation_id; it belongs to every SKU of its
-- cart), then each SKU's threshold crossings from its `available` before the change
-- (p_before: {sku: available}) to its row now, SKUs in byte order. The caller holds the row lock
-- of every SKU the events belong to, so `seq` follows the commit order per SKU.
-- p_movements: [{sku, id, kind, delta, reservationId?, reason?, at}].
CREATE FUNCTION stockhold_change_events(p_before jsonb, p_movements jsonb, p_reservation_type text, p_reservation_id text)
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

-- Locks these SKUs' rows, in the one order every writer takes them (byte order: writers of
-- several SKUs never deadlock); the SKUs' `available` before the change ({sku: available}).
CREATE FUNCTION stockhold_lock_skus(p_skus text[]) RETURNS jsonb LANGUAGE sql AS $$
  SELECT COALESCE(jsonb_object_agg(l.sku, l.total - l.reserved), '{}'::jsonb)
    FROM (SELECT sku, total, reserved FROM skus WHERE sku = ANY(p_skus) ORDER BY sku COLLATE "C" FOR UPDATE) l
$$;

-- A hold, once Redis applied it: the reservation HELD with its lines and its SKUs' `reserved`,
-- where PostgreSQL has the last word on the promise (docs/DESIGN.md invariant 1a). Returns
-- {"outcome": "held" | "repeat"} or {"refusal": code, ...details}, having written nothing then:
--   SKU_NOT_FOUND {sku}; FINISHED (the reservation ended: it never holds again); OTHER_CART (the
--   id holds another cart); INSUFFICIENT_STOCK {sku, requested, available} (the line would take
--   `reserved` above `total`); CUSTOMER_REQUIRED {sku}; CUSTOMER_LIMIT_EXCEEDED {sku, limit,
--   held, bought, requested} (as PostgreSQL counts the customer's held and bought units).
-- A REJECTED reservation (an earlier run gave up while the stores were down) holds again.
CREATE FUNCTION stockhold_hold(p_id text, p_customer text, p_expires_at timestamptz, p_skus text[],
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

-- Locks a reservation's SKUs (in the shared order) and then its row. The lines are read before the
-- locks and again after: only a re-hold of a REJECTED id changes them, and then the SKUs it added
-- are locked last (out of order, but only against that one reservation's own steps). Returns the
-- SKUs' `available` before the change ({sku: available}) and the reservation's status (NULL: none).
CREATE FUNCTION stockhold_lock_reservation(p_id text, OUT before jsonb, OUT status text) LANGUAGE plpgsql AS $$
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

-- How a reservation ended without a sale (p_status: CANCELLED, EXPIRED or REJECTED), unless it
-- has ended already (then it writes nothing, events included). A HELD one gives its units back to
-- `skus.reserved`. REJECTED has no event of its own in the contract: only the threshold events its
-- release may cause. Returns the status the reservation has now (NULL when PostgreSQL does not
-- know it): COMMITTED when a sale got there first.
CREATE FUNCTION stockhold_release(p_id text, p_status text, p_reason text, p_events boolean)
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

-- The lines of a sale, in byte order of the SKU: each held line with what it sells (all of it when
-- p_skus is NULL; else what p_quantities gives its SKU, 0 for a line not named) and its SKU's total.
CREATE FUNCTION stockhold_sale_lines(p_id text, p_skus text[], p_quantities integer[])
RETURNS TABLE (sku text, quantity integer, returned_quantity integer, total bigint, selling integer)
LANGUAGE sql STABLE AS $$
  SELECT l.sku, l.quantity, l.returned_quantity, k.total,
         CASE WHEN p_skus IS NULL THEN l.quantity
              ELSE COALESCE((SELECT w.quantity FROM unnest(p_skus, p_quantities) AS w (sku, quantity) WHERE w.sku = l.sku), 0) END
    FROM reservation_lines l JOIN skus k ON k.sku = l.sku
   WHERE l.reservation_id = p_id ORDER BY l.sku COLLATE "C"
$$;

-- The sale of a HELD reservation: at most the held quantity of each line (all of it when p_skus is
-- NULL; else the lines named, each p_quantities[i] of p_skus[i]), a `sale` movement per sold line,
-- the whole hold out of `reserved`, status COMMITTED. A COMMITTED one answers its lines again (a
-- retry). Returns {"outcome": "sold" | "repeat", "customerId", "items": [{sku, quantity,
-- committedQuantity, returnedQuantity, movementId}]} (movementId '0' for a line that sold
-- nothing), or {"refusal": code, ...} having written nothing: NOT_FOUND; NOT_HELD {status};
-- QUANTITY_EXCEEDS_HOLD {sku, requested, held}; INSUFFICIENT_STOCK {sku, requested, available}
-- (PostgreSQL's total cannot cover the sale: only a hold it never recorded).
CREATE FUNCTION stockhold_sell(p_id text, p_skus text[], p_quantities integer[], p_payment text, p_events boolean)
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

-- Down Migration
DROP FUNCTION stockhold_sell(text, text[], integer[], text, boolean);
DROP FUNCTION stockhold_sale_lines(text, text[], integer[]);
DROP FUNCTION stockhold_release(text, text, text, boolean);
DROP FUNCTION stockhold_lock_reservation(text);
DROP FUNCTION stockhold_hold(text, text, timestamptz, text[], integer[], boolean);
DROP FUNCTION stockhold_lock_skus(text[]);
DROP FUNCTION stockhold_change_events(jsonb, jsonb, text, text);
DROP FUNCTION stockhold_threshold_crossings(bigint, bigint, integer);
DROP FUNCTION stockhold_reservation_view(text);
DROP FUNCTION stockhold_stock_view(skus);
DROP FUNCTION stockhold_iso(timestamptz);
