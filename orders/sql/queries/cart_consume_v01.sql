-- Take what was just bought out of the customer's cart, in one statement.
-- Only the ordered quantity goes: units added to a line while the payment
-- was being taken (another tab, no cart lock held then) stay in the cart.
-- Lines bought in full are deleted; the others are decremented.
WITH ordered AS (
    SELECT * FROM unnest(%(variant_ids)s::bigint[], %(quantities)s::integer[])
        AS o (variant_id, quantity)
), bought_in_full AS (
    DELETE FROM orders_cart_item AS ci
    USING orders_cart AS c, ordered AS o
    WHERE ci.cart_id = c.id AND c.customer_id = %(customer_id)s
      AND ci.variant_id = o.variant_id AND ci.quantity <= o.quantity
    RETURNING ci.id
)
UPDATE orders_cart_item AS ci
SET quantity = ci.quantity - o.quantity
FROM orders_cart AS c, ordered AS o
WHERE ci.cart_id = c.id AND c.customer_id = %(customer_id)s
  AND ci.variant_id = o.variant_id AND ci.quantity > o.quantity
