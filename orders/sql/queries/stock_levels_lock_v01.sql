-- Lock every stock row of the given variants, in the shop's one order:
-- variant, then warehouse (orders/locks.py). ORDER BY sits below the lock
-- in the plan, so the rows are locked in that order. OF s: the warehouse is
-- joined for its is_default flag, and only the stock rows are locked.
-- `available` is read after the lock: a row that another transaction
-- changed while this one waited is read again at its newest version.
SELECT s.id, s.variant_id, s.warehouse_id,
       s.quantity_on_hand - s.reserved AS available,
       w.is_default AS warehouse_is_default
FROM catalog_stock_level AS s
JOIN catalog_warehouse AS w ON w.id = s.warehouse_id
WHERE s.variant_id = ANY (%(variant_ids)s::bigint[])
ORDER BY s.variant_id, s.warehouse_id
FOR UPDATE OF s
