-- Invariants that no crash may break, one row of named counts, each of
-- which must be 0 (tests/orders/test_crash_safety.py). Run as a role that
-- sees every row (the cluster superuser: row-level security does not apply).
WITH ledger AS (
    -- The stock ledger is append-only and written by a trigger in the same
    -- transaction as the stock change (orders/sql/triggers/): its sums are
    -- what each stock row must hold, the check of tests/shop/test_seed.py
    -- ("every stock row's movements still add up to its stock") and of
    -- tests/orders/test_concurrency.py:assert_ledger_matches.
    SELECT s.id,
           s.quantity_on_hand,
           s.reserved,
           COALESCE(sum(m.on_hand_delta), 0) AS on_hand_sum,
           COALESCE(sum(m.reserved_delta), 0) AS reserved_sum
    FROM catalog_stock_level AS s
    LEFT JOIN orders_stock_movement AS m ON m.stock_level_id = s.id
    GROUP BY s.id
),
held_for_orders AS (
    -- The units each order holds reserved, by its own movements (the seed's
    -- opening reservations belong to no order): a pending order holds its
    -- lines, any other order nothing.
    SELECT o.id,
           o.status,
           COALESCE((SELECT sum(m.reserved_delta) FROM orders_stock_movement AS m
                     WHERE m.order_id = o.id), 0) AS held,
           (SELECT sum(l.quantity) FROM orders_order_line AS l
            WHERE l.order_id = o.id) AS line_units
    FROM orders_order AS o
),
gateway_captures AS (
    SELECT g.reference, g.amount,
           EXISTS (SELECT FROM orders_fake_gateway_ledger AS r
                   WHERE r.kind = 'refund' AND r.reference = g.reference) AS refunded
    FROM orders_fake_gateway_ledger AS g
    WHERE g.kind = 'charge' AND g.outcome = 'captured'
)
SELECT
    (SELECT count(*) FROM ledger
     WHERE on_hand_sum <> quantity_on_hand) AS on_hand_off_ledger,
    (SELECT count(*) FROM ledger
     WHERE reserved_sum <> reserved) AS reserved_off_ledger,
    (SELECT count(*) FROM held_for_orders
     WHERE held <> CASE WHEN status = 'pending' THEN line_units ELSE 0 END
    ) AS reservations_not_matching_orders,
    (SELECT count(*) FROM catalog_stock_level
     WHERE quantity_on_hand < 0 OR reserved < 0
        OR reserved > quantity_on_hand) AS stock_out_of_bounds,
    -- orders_order_lines_total() (orders/sql/functions/) is what a stored
    -- subtotal must equal, as tests/shop/test_seed.py checks it.
    (SELECT count(*) FROM orders_order
     WHERE subtotal <> orders_order_lines_total(id)
        OR total <> subtotal - discount) AS totals_off_lines,
    (SELECT count(*) FROM orders_order AS o
     WHERE NOT EXISTS (SELECT FROM orders_order_line AS l
                       WHERE l.order_id = o.id)) AS orders_without_lines,
    -- Recovery has run: no checkout is left between its phases.
    (SELECT count(*) FROM orders_order
     WHERE status = 'pending') AS pending_orders,
    (SELECT count(*) FROM orders_idempotency_key
     WHERE status = 'in_progress') AS keys_in_progress,
    (SELECT count(*) FROM orders_payment
     WHERE status = 'refund_pending') AS refunds_owed,
    -- The gateway's books against the shop's: money it took is for an
    -- order that was sold (paid, or cancelled and refunded since) at that
    -- amount, or it was given back; and every order the drill saw paid
    -- (the seed's orders, up to seeded_up_to, never went through
    -- the gateway) holds a capture of its total.
    (SELECT count(*) FROM gateway_captures AS g
     WHERE NOT g.refunded AND NOT EXISTS (
         SELECT FROM orders_order AS o
         WHERE o.payment_reference = g.reference
           AND o.status IN ('paid', 'cancelled') AND o.total = g.amount)
    ) AS captures_kept_for_unsold_orders,
    (SELECT count(*) FROM orders_order AS o
     WHERE o.status = 'paid' AND o.id > %(seeded_up_to)s
       AND NOT EXISTS (SELECT FROM gateway_captures AS g
                       WHERE g.reference = o.payment_reference
                         AND g.amount = o.total AND NOT g.refunded)
    ) AS paid_orders_without_capture
