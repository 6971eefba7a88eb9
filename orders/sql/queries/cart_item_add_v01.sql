-- Add to a cart line, or create it: one atomic statement. ON CONFLICT turns
-- "read the line, add, save" (a lost update waiting to happen when two tabs
-- add at once) into an increment the database applies under the row lock.
INSERT INTO orders_cart_item (cart_id, variant_id, quantity, added_at)
VALUES (%(cart_id)s, %(variant_id)s, %(quantity)s, now())
ON CONFLICT ON CONSTRAINT orders_cart_item_one_line_per_variant
DO UPDATE SET quantity = orders_cart_item.quantity + EXCLUDED.quantity
RETURNING id, quantity
