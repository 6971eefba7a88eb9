-- Phase 1's first statement: who is acting, then the lock on the customer's
-- cart (orders/locks.py:cart_lock), in one round trip. The lock is a
-- LATERAL subquery whose WHERE reads the settings' row (context.settings
-- counts them, never NULL: the condition is there to make the subquery
-- depend on that row), so it runs only after set_config() has, and
-- row-level security filters the cart by the customer just set. A plain
-- join could scan the cart first, with no one acting yet
-- (shop/db_context.py says more). FOR UPDATE keeps the subquery whole, so
-- the lock is taken in it, on the cart alone.
SELECT cart.id
FROM (SELECT count(set_config(name, value, true)) AS settings
      FROM unnest(%(setting_names)s::text[], %(setting_values)s::text[])
          AS setting (name, value)) AS context,
     LATERAL (SELECT id FROM orders_cart
              WHERE context.settings IS NOT NULL AND customer_id = %(customer_id)s
              FOR UPDATE) AS cart
