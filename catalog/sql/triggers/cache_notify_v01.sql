-- The catalog cache's view of every write (catalog/cache/): whoever changes
-- what the shop's pages show -- the staff API, the admin, checkout's
-- set-based SQL, the PL/pgSQL checkout function, the release procedure,
-- psql, the seed -- the database says which products changed, on the
-- channel `catalog_changed`. `manage.py cache_listen` listens and moves the
-- cache's versions in Redis.
--
-- NOTIFY is transactional: the message is delivered when the writing
-- transaction commits, in commit order, and never for one that rolls back.
-- So the cache is told after the new rows are visible to everybody, which
-- is what a cache fill must be able to rely on (catalog/cache/__init__.py).
--
-- Statement-level triggers with transition tables, as for min_price and
-- the stock ledger: a statement that changes 300k rows sends one message,
-- not 300k.
--
-- The payload: {"products": [ids], "lists": bool, "categories": bool}.
-- `lists` says the write may move a product onto, off or within a list
-- page (its name, price, category, whether it is on sale or in stock);
-- most stock changes (a reservation, a sale) do not, and then only the
-- products' own entries go. Past 300 products the payload says {"everything": true}: NOTIFY refuses payloads of 8000 bytes
-- or more, and 300 bigints in JSON stay under that whatever their size.

CREATE FUNCTION catalog_cache_notify(
    product_ids bigint[], lists boolean, categories boolean
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    -- Sorted and without repeats: a transaction that sends the same payload
    -- twice (several statements on the same rows) is delivered it once.
    SELECT coalesce(array_agg(DISTINCT id ORDER BY id), '{}') INTO ids
    FROM unnest(product_ids) AS given (id)
    WHERE id IS NOT NULL;
    IF cardinality(ids) = 0 AND NOT lists AND NOT categories THEN
        RETURN;
    END IF;
    IF cardinality(ids) > 300 THEN
        PERFORM pg_notify('catalog_changed', '{"everything": true}');
        RETURN;
    END IF;
    PERFORM pg_notify(
        'catalog_changed',
        json_build_object('products', ids, 'lists', lists, 'categories', categories)::text
    );
END;
$$;

-- Products: every column a page shows also decides a list (name and price
-- order it, category, is_active and min_price filter it, name and
-- description are searched), so a change to any of them is a change to the
-- lists too. updated_at alone, or a min_price recomputed to the same value,
-- changes nothing shown.
CREATE FUNCTION catalog_product_cache_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT n.id FROM new_products AS n LIMIT 301);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT o.id FROM old_products AS o LIMIT 301);
    ELSE
        ids := ARRAY(
            SELECT n.id
            FROM new_products AS n
            JOIN old_products AS o ON o.id = n.id
            WHERE (n.name, n.slug, n.description, n.category_id, n.is_active,
                   n.min_price, n.created_at)
                IS DISTINCT FROM (o.name, o.slug, o.description, o.category_id,
                                  o.is_active, o.min_price, o.created_at)
            LIMIT 301
        );
    END IF;
    PERFORM catalog_cache_notify(ids, cardinality(ids) > 0, false);
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_product_cache_insert
    AFTER INSERT ON catalog_product
    REFERENCING NEW TABLE AS new_products
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_product_cache_notify();

CREATE TRIGGER catalog_product_cache_update
    AFTER UPDATE ON catalog_product
    REFERENCING OLD TABLE AS old_products NEW TABLE AS new_products
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_product_cache_notify();

CREATE TRIGGER catalog_product_cache_delete
    AFTER DELETE ON catalog_product
    REFERENCING OLD TABLE AS old_products
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_product_cache_notify();

-- Variants: the detail page shows each one. A variant added, removed,
-- moved or switched on or off changes its product's availability and
-- perhaps whether it is listed, so the lists too. A new price alone changes
-- the lists only through min_price, whose own UPDATE of the product says so.
CREATE FUNCTION catalog_variant_cache_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    lists boolean := true;
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT DISTINCT n.product_id FROM new_variants AS n LIMIT 301);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT DISTINCT o.product_id FROM old_variants AS o LIMIT 301);
    ELSE
        ids := ARRAY(
            SELECT DISTINCT side.product_id
            FROM new_variants AS n
            JOIN old_variants AS o ON o.id = n.id
            CROSS JOIN LATERAL (VALUES (n.product_id), (o.product_id))
                AS side (product_id)
            WHERE (n.product_id, n.sku, n.name, n.price, n.is_active)
                IS DISTINCT FROM (o.product_id, o.sku, o.name, o.price, o.is_active)
            LIMIT 301
        );
        lists := EXISTS (
            SELECT 1
            FROM new_variants AS n
            JOIN old_variants AS o ON o.id = n.id
            WHERE (n.product_id, n.is_active) IS DISTINCT FROM (o.product_id, o.is_active)
        );
    END IF;
    PERFORM catalog_cache_notify(ids, lists AND cardinality(ids) > 0, false);
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_variant_cache_insert
    AFTER INSERT ON catalog_product_variant
    REFERENCING NEW TABLE AS new_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_cache_notify();

CREATE TRIGGER catalog_variant_cache_update
    AFTER UPDATE ON catalog_product_variant
    REFERENCING OLD TABLE AS old_variants NEW TABLE AS new_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_cache_notify();

CREATE TRIGGER catalog_variant_cache_delete
    AFTER DELETE ON catalog_product_variant
    REFERENCING OLD TABLE AS old_variants
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_cache_notify();

-- Stock: the pages show units available (on hand minus reserved). A sale
-- takes a unit off both, so it changes nothing shown and sends nothing;
-- a reservation, a release or a restock changes the product's entries.
-- The lists care only whether a row has any unit available (the in_stock
-- filter), so they go only when that flips: checkout's reservations leave
-- every list page cached unless they sell the last unit.
CREATE FUNCTION catalog_stock_cache_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    lists boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(
            SELECT DISTINCT v.product_id
            FROM new_levels AS n
            JOIN catalog_product_variant AS v ON v.id = n.variant_id
            WHERE n.quantity_on_hand > n.reserved
            LIMIT 301
        );
        lists := cardinality(ids) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        -- A variant's delete cascades to its stock: the variant is gone by
        -- then, and its own trigger has named the product.
        ids := ARRAY(
            SELECT DISTINCT v.product_id
            FROM old_levels AS o
            JOIN catalog_product_variant AS v ON v.id = o.variant_id
            WHERE o.quantity_on_hand > o.reserved
            LIMIT 301
        );
        lists := cardinality(ids) > 0;
    ELSE
        ids := ARRAY(
            SELECT DISTINCT v.product_id
            FROM new_levels AS n
            JOIN old_levels AS o ON o.id = n.id
            CROSS JOIN LATERAL (VALUES (n.variant_id), (o.variant_id))
                AS side (variant_id)
            JOIN catalog_product_variant AS v ON v.id = side.variant_id
            WHERE (n.variant_id, n.quantity_on_hand - n.reserved)
                IS DISTINCT FROM (o.variant_id, o.quantity_on_hand - o.reserved)
            LIMIT 301
        );
        lists := EXISTS (
            SELECT 1
            FROM new_levels AS n
            JOIN old_levels AS o ON o.id = n.id
            WHERE n.variant_id <> o.variant_id
               OR (n.quantity_on_hand > n.reserved) <> (o.quantity_on_hand > o.reserved)
        );
    END IF;
    PERFORM catalog_cache_notify(ids, lists AND cardinality(ids) > 0, false);
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_stock_cache_insert
    AFTER INSERT ON catalog_stock_level
    REFERENCING NEW TABLE AS new_levels
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_cache_notify();

CREATE TRIGGER catalog_stock_cache_update
    AFTER UPDATE ON catalog_stock_level
    REFERENCING OLD TABLE AS old_levels NEW TABLE AS new_levels
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_cache_notify();

CREATE TRIGGER catalog_stock_cache_delete
    AFTER DELETE ON catalog_stock_level
    REFERENCING OLD TABLE AS old_levels
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_cache_notify();

-- Categories: the tree, the lists (a category filter covers a subtree, by
-- slug), and the products of the categories changed, whose pages show the
-- category's slug and name.
CREATE FUNCTION catalog_category_cache_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    category_ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        category_ids := ARRAY(SELECT n.id FROM new_categories AS n);
    ELSIF TG_OP = 'DELETE' THEN
        category_ids := ARRAY(SELECT o.id FROM old_categories AS o);
    ELSE
        category_ids := ARRAY(
            SELECT n.id
            FROM new_categories AS n
            JOIN old_categories AS o ON o.id = n.id
            WHERE (n.name, n.slug, n.parent_id) IS DISTINCT FROM (o.name, o.slug, o.parent_id)
        );
    END IF;
    IF cardinality(category_ids) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM catalog_cache_notify(
        ARRAY(
            SELECT p.id FROM catalog_product AS p
            WHERE p.category_id = ANY (category_ids)
            LIMIT 301
        ),
        true,
        true
    );
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_category_cache_insert
    AFTER INSERT ON catalog_category
    REFERENCING NEW TABLE AS new_categories
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_category_cache_notify();

CREATE TRIGGER catalog_category_cache_update
    AFTER UPDATE ON catalog_category
    REFERENCING OLD TABLE AS old_categories NEW TABLE AS new_categories
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_category_cache_notify();

CREATE TRIGGER catalog_category_cache_delete
    AFTER DELETE ON catalog_category
    REFERENCING OLD TABLE AS old_categories
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_category_cache_notify();

-- TRUNCATE fires no row or transition-table trigger, and says nothing of
-- which rows went: everything cached may be wrong.
CREATE FUNCTION catalog_cache_notify_everything() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('catalog_changed', '{"everything": true}');
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_product_cache_truncate
    AFTER TRUNCATE ON catalog_product
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_cache_notify_everything();

CREATE TRIGGER catalog_variant_cache_truncate
    AFTER TRUNCATE ON catalog_product_variant
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_cache_notify_everything();

CREATE TRIGGER catalog_stock_cache_truncate
    AFTER TRUNCATE ON catalog_stock_level
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_cache_notify_everything();

CREATE TRIGGER catalog_category_cache_truncate
    AFTER TRUNCATE ON catalog_category
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_cache_notify_everything();
