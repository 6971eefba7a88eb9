-- Phase 3's first statement: who is acting, then its locks in the shop's one
-- order (orders/locks.py): the order, then every stock row of its lines'
-- variants, by variant and warehouse. One round trip, where three would
-- do the same: the settings, the order's lock, the stock rows' lock. Each
-- LATERAL subquery reads the row before it (the settings' count, the
-- order's id), so it runs after it (cart_lock_v01.sql says why that
-- matters to row-level security); inside the last, ORDER BY sits below
-- the lock, so the stock rows are locked in that order. A row that another
-- transaction changed while this one waited for it is read at its newest
-- version. One row per stock row, each with the order's columns, in the
-- model's field order.
SELECT o.id, o.customer_id, o.status, o.subtotal, o.discount, o.total,
       o.coupon_id, o.created_at, o.paid_at, o.payment_reference,
       s.id AS stock_level_id, s.variant_id, s.warehouse_id, s.available,
       s.warehouse_is_default
FROM (SELECT count(set_config(name, value, true)) AS settings
      FROM unnest(%(setting_names)s::text[], %(setting_values)s::text[])
          AS setting (name, value)) AS context,
     LATERAL (SELECT * FROM orders_order
              WHERE context.settings IS NOT NULL AND id = %(order_id)s
              FOR UPDATE) AS o,
     LATERAL (SELECT level.id, level.variant_id, level.warehouse_id,
                     level.quantity_on_hand - level.reserved AS available,
                     w.is_default AS warehouse_is_default
              FROM catalog_stock_level AS level
              JOIN catalog_warehouse AS w ON w.id = level.warehouse_id
              WHERE o.id IS NOT NULL
                AND level.variant_id = ANY (%(variant_ids)s::bigint[])
              ORDER BY level.variant_id, level.warehouse_id
              FOR UPDATE OF level) AS s
