-- catalog_product.min_price: the lowest price among the product's active
-- variants, NULL when it has none. A deliberate denormalization (chapter
-- 18): the product list sorts and filters on price, and a price computed
-- per product by a subquery over the variants cannot be read from an index,
-- so every price ordering sorted the whole catalogue. A column can be
-- indexed, and the database keeps it right in the same transaction as the
-- write that changes it, whoever writes (the API, the admin, psql, the seed).
--
-- Statement-level triggers with transition tables, as for the stock ledger:
-- an UPDATE of 300k variants recomputes each affected product once, in one
-- set-based statement, instead of once per variant row.

-- Recompute min_price for these products. Two statements on purpose:
--
-- 1. Lock the products, in id order (two writers that touch the same
--    products queue up instead of deadlocking).
-- 2. Compute and write. A VOLATILE function takes a fresh snapshot for each
--    statement under READ COMMITTED, so this one sees every variant change
--    committed by whoever held a product's lock before: the last writer to
--    get the lock computes from all of them. Computed in the same statement
--    as the lock, the minimum would come from a snapshot taken before the
--    wait, and two concurrent price changes on one product could leave the
--    older minimum behind (tests/catalog/test_min_price.py races them).
--
-- Products whose minimum did not change are not written at all (IS DISTINCT
-- FROM), so a bulk load that already carries the right value costs no
-- product updates.
CREATE FUNCTION catalog_product_refresh_min_price(product_ids bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1
    FROM catalog_product
    WHERE id = ANY (product_ids)
    ORDER BY id
    FOR UPDATE;

    UPDATE catalog_product AS p
    SET min_price = lowest.min_price
    FROM (
        SELECT affected.id, min(v.price) AS min_price
        FROM unnest(product_ids) AS affected (id)
        LEFT JOIN catalog_product_variant AS v
            ON v.product_id = affected.id AND v.is_active
        GROUP BY affected.id
    ) AS lowest
    WHERE p.id = lowest.id
      AND p.min_price IS DISTINCT FROM lowest.min_price;
END;
$$;

-- After INSERT, UPDATE or DELETE of variants: the products on either side of
-- the change (an UPDATE may move a variant to another product). An UPDATE
-- that changes none of product, price or is_active recomputes nothing.
CREATE FUNCTION catalog_variant_refresh_min_price() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    affected bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT n.product_id) INTO affected
        FROM new_variants AS n;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT o.product_id) INTO affected
        FROM old_variants AS o;
    ELSE
        SELECT array_agg(DISTINCT changed.product_id) INTO affected
        FROM (
            SELECT n.product_id, o.product_id AS old_product_id
            FROM new_variants AS n
            JOIN old_variants AS o ON o.id = n.id
            WHERE (n.product_id, n.price, n.is_active)
                IS DISTINCT FROM (o.product_id, o.price, o.is_active)
        ) AS moved,
        LATERAL (VALUES (moved.product_id), (moved.old_product_id))
            AS changed (product_id);
    END IF;
    IF affected IS NOT NULL THEN
        PERFORM catalog_product_refresh_min_price(affected);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_variant_min_price_insert
    AFTER INSERT ON catalog_product_variant
    REFERENCING NEW TABLE AS new_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_refresh_min_price();

CREATE TRIGGER catalog_variant_min_price_update
    AFTER UPDATE ON catalog_product_variant
    REFERENCING OLD TABLE AS old_variants NEW TABLE AS new_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_refresh_min_price();

CREATE TRIGGER catalog_variant_min_price_delete
    AFTER DELETE ON catalog_product_variant
    REFERENCING OLD TABLE AS old_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_refresh_min_price();

-- TRUNCATE fires no row or transition-table trigger: every product that is
-- left has no variant any more.
CREATE FUNCTION catalog_variant_truncate_min_price() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_product SET min_price = NULL WHERE min_price IS NOT NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_variant_min_price_truncate
    AFTER TRUNCATE ON catalog_product_variant
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_truncate_min_price();

-- A product saved whole (Django's Model.save(), the admin) writes back the
-- min_price it read, which a variant change may have made stale since. Such
-- a write is replaced by the value the variants give, read under the lock
-- the UPDATE holds on the product row. The triggers above pass their own
-- value through here too, and it is the same one.
CREATE FUNCTION catalog_product_keep_min_price() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.min_price := (
        SELECT min(v.price)
        FROM catalog_product_variant AS v
        WHERE v.product_id = NEW.id AND v.is_active
    );
    RETURN NEW;
END;
$$;

CREATE TRIGGER catalog_product_keep_min_price
    BEFORE UPDATE OF min_price ON catalog_product
    FOR EACH ROW
    WHEN (NEW.min_price IS DISTINCT FROM OLD.min_price)
    EXECUTE FUNCTION catalog_product_keep_min_price();

-- The rows that exist already.
SELECT catalog_product_refresh_min_price(ARRAY(SELECT id FROM catalog_product));
