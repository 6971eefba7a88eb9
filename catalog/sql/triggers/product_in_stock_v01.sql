-- catalog_product.in_stock: whether any active variant of the product has a
-- unit available (quantity_on_hand above reserved) in some warehouse. The
-- product list's in_stock filter, denormalized like min_price (chapter 18):
-- as a subquery per product, `in_stock=false` had to test product after
-- product, newest first, until it found twenty sold-out ones among a
-- catalogue that is nearly all in stock. As a column, a small partial index
-- holds exactly the sold-out products (catalog/models.py).
--
-- What it costs the writers: every statement that changes stock runs one
-- more statement-level trigger, which compares the old and new rows
-- (transition tables) and stops there unless a row crossed zero, in either
-- direction. A reservation of the third-last unit crosses nothing;
-- reserving the last one does (a sale then takes a unit off on-hand and
-- reserved together, and crosses nothing), and only then is the product
-- locked and rewritten. Since in_stock is in the condition of a partial
-- index, that rewrite is never a HOT update: it adds an entry to each of
-- the product's indexes, the GIN one included.

-- Recompute in_stock for these products: the same two statements, for the
-- same reason, as catalog_product_refresh_min_price
-- (product_min_price_v01.sql). First lock the products in id order; then
-- compute from a snapshot taken after the wait. Two checkouts that each
-- sell the last unit of a different variant of one product would otherwise
-- each see the other's unit still there, and leave the product in stock
-- with nothing to sell (tests/catalog/test_in_stock.py races them).
CREATE FUNCTION catalog_product_refresh_in_stock(product_ids bigint[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1
    FROM catalog_product
    WHERE id = ANY (product_ids)
    ORDER BY id
    FOR UPDATE;

    UPDATE catalog_product AS p
    SET in_stock = fresh.in_stock
    FROM (
        SELECT affected.id, EXISTS (
            SELECT 1
            FROM catalog_product_variant AS v
            JOIN catalog_stock_level AS s ON s.variant_id = v.id
            WHERE v.product_id = affected.id
              AND v.is_active
              AND s.quantity_on_hand > s.reserved
        ) AS in_stock
        FROM unnest(product_ids) AS affected (id)
    ) AS fresh
    WHERE p.id = fresh.id
      AND p.in_stock IS DISTINCT FROM fresh.in_stock;
END;
$$;

-- Stock rows. An UPDATE recomputes the products of the rows whose
-- availability crossed zero, or that moved to another variant. A new row
-- recomputes its product whatever it holds: the seed writes each product's
-- flag itself, and this is where a wrong one would be put right. A deleted
-- row's product is found through its variant; when the variant's own delete
-- cascaded here, the variant is gone, and its trigger below names the product.
CREATE FUNCTION catalog_stock_refresh_in_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    affected bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT v.product_id) INTO affected
        FROM new_levels AS n
        JOIN catalog_product_variant AS v ON v.id = n.variant_id;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT v.product_id) INTO affected
        FROM old_levels AS o
        JOIN catalog_product_variant AS v ON v.id = o.variant_id
        WHERE o.quantity_on_hand > o.reserved;
    ELSE
        SELECT array_agg(DISTINCT v.product_id) INTO affected
        FROM new_levels AS n
        JOIN old_levels AS o ON o.id = n.id
        CROSS JOIN LATERAL (VALUES (n.variant_id), (o.variant_id))
            AS side (variant_id)
        JOIN catalog_product_variant AS v ON v.id = side.variant_id
        WHERE n.variant_id <> o.variant_id
           OR (n.quantity_on_hand > n.reserved) <> (o.quantity_on_hand > o.reserved);
    END IF;
    IF affected IS NOT NULL THEN
        PERFORM catalog_product_refresh_in_stock(affected);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_stock_in_stock_insert
    AFTER INSERT ON catalog_stock_level
    REFERENCING NEW TABLE AS new_levels
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_refresh_in_stock();

CREATE TRIGGER catalog_stock_in_stock_update
    AFTER UPDATE ON catalog_stock_level
    REFERENCING OLD TABLE AS old_levels NEW TABLE AS new_levels
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_refresh_in_stock();

CREATE TRIGGER catalog_stock_in_stock_delete
    AFTER DELETE ON catalog_stock_level
    REFERENCING OLD TABLE AS old_levels
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_refresh_in_stock();

-- Variants. Switched on or off, moved to another product, or deleted: the
-- products on either side. A new variant has no stock row yet, as a rule,
-- and then its first stock row's trigger does the work. The exception:
-- the foreign keys are DEFERRABLE INITIALLY DEFERRED, so one transaction
-- may insert a stock row before its variant, whose product the stock
-- trigger then could not find. So a new variant that already has stock
-- rows recomputes its product; the seed's variants have none yet, and
-- cost one index probe each.
CREATE FUNCTION catalog_variant_refresh_in_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    affected bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT n.product_id) INTO affected
        FROM new_variants AS n
        WHERE EXISTS (
            SELECT 1 FROM catalog_stock_level AS s WHERE s.variant_id = n.id
        );
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT o.product_id) INTO affected
        FROM old_variants AS o;
    ELSE
        SELECT array_agg(DISTINCT changed.product_id) INTO affected
        FROM (
            SELECT n.product_id, o.product_id AS old_product_id
            FROM new_variants AS n
            JOIN old_variants AS o ON o.id = n.id
            WHERE (n.product_id, n.is_active) IS DISTINCT FROM (o.product_id, o.is_active)
        ) AS moved,
        LATERAL (VALUES (moved.product_id), (moved.old_product_id))
            AS changed (product_id);
    END IF;
    IF affected IS NOT NULL THEN
        PERFORM catalog_product_refresh_in_stock(affected);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_variant_in_stock_insert
    AFTER INSERT ON catalog_product_variant
    REFERENCING NEW TABLE AS new_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_refresh_in_stock();

CREATE TRIGGER catalog_variant_in_stock_update
    AFTER UPDATE ON catalog_product_variant
    REFERENCING OLD TABLE AS old_variants NEW TABLE AS new_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_refresh_in_stock();

CREATE TRIGGER catalog_variant_in_stock_delete
    AFTER DELETE ON catalog_product_variant
    REFERENCING OLD TABLE AS old_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_refresh_in_stock();

-- TRUNCATE fires no row or transition-table trigger: with the stock (or the
-- variants, whose TRUNCATE must cascade to the stock) gone, nothing is
-- available.
CREATE FUNCTION catalog_stock_truncate_in_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_product SET in_stock = false WHERE in_stock;
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_stock_in_stock_truncate
    AFTER TRUNCATE ON catalog_stock_level
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_truncate_in_stock();

-- A product saved whole (Django's Model.save(), the admin) writes back the
-- in_stock it read, which a sale may have made stale since. As for
-- min_price, such a write is replaced by the value the rows give, read under
-- the lock the UPDATE holds on the product row.
CREATE FUNCTION catalog_product_keep_in_stock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.in_stock := EXISTS (
        SELECT 1
        FROM catalog_product_variant AS v
        JOIN catalog_stock_level AS s ON s.variant_id = v.id
        WHERE v.product_id = NEW.id
          AND v.is_active
          AND s.quantity_on_hand > s.reserved
    );
    RETURN NEW;
END;
$$;

CREATE TRIGGER catalog_product_keep_in_stock
    BEFORE UPDATE OF in_stock ON catalog_product
    FOR EACH ROW
    WHEN (NEW.in_stock IS DISTINCT FROM OLD.in_stock)
    EXECUTE FUNCTION catalog_product_keep_in_stock();

-- The rows that exist already.
SELECT catalog_product_refresh_in_stock(ARRAY(SELECT id FROM catalog_product));
