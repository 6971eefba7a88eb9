-- Phase 1's pending order: the totals computed from the cart's lines and
-- the shipping address, a snapshot (chapter 03). The payment reference is
-- the column's default, a random UUID (orders/models.py:Order).
INSERT INTO orders_order
    (customer_id, status, subtotal, discount, total,
     ship_line1, ship_line2, ship_city, ship_postal_code, ship_country,
     created_at, updated_at)
VALUES (%(customer_id)s, 'pending', %(subtotal)s, 0, %(subtotal)s,
        %(line1)s, %(line2)s, %(city)s, %(postal_code)s, %(country)s,
        now(), now())
RETURNING id, payment_reference, created_at
