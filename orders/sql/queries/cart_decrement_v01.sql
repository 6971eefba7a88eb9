-- Take bought units out of cart lines that held more than the order bought
-- (units added while its payment was being taken): the rare case that
-- order_sell_v01.sql leaves to this statement.
UPDATE orders_cart_item AS item
SET quantity = item.quantity - bought.quantity
FROM unnest(%(variant_ids)s::bigint[], %(quantities)s::integer[])
    AS bought (variant_id, quantity)
WHERE item.cart_id = (SELECT id FROM orders_cart
                      WHERE customer_id = %(customer_id)s)
  AND item.variant_id = bought.variant_id
  AND item.quantity > bought.quantity
