-- Phase 1 reads the cart once it holds its lock (orders/locks.py:cart_lock):
-- the lines, with the price and name the order will keep, and whether
-- another checkout of this customer's is still pending, in one statement,
-- so from one snapshot. Read apart, a checkout could see the other's lines
-- before that one's phase 3 takes them out of the cart, and its pending
-- order after that phase 3 paid it, and buy the same lines twice.
SELECT i.id, i.variant_id, i.quantity, v.sku, v.price, p.name AS product_name,
       v.is_active AND p.is_active AS on_sale,
       EXISTS (SELECT FROM orders_order AS o
               WHERE o.customer_id = %(customer_id)s AND o.status = 'pending')
           AS checkout_pending
FROM orders_cart_item AS i
JOIN catalog_product_variant AS v ON v.id = i.variant_id
JOIN catalog_product AS p ON p.id = v.product_id
WHERE i.cart_id = %(cart_id)s
ORDER BY i.variant_id
