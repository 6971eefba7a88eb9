-- A category may not sit under its own descendant: the tree stays a tree.
-- A CHECK sees one row only, so this needs a trigger that walks the
-- ancestors of the new parent with a recursive CTE. Two concurrent moves
-- (A under B, B under A) could each pass the check before the other
-- commits; a transaction-level advisory lock serializes moves in the tree.
CREATE FUNCTION catalog_category_refuse_cycle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('catalog_category_tree'));
    IF EXISTS (
        WITH RECURSIVE ancestors AS (
            SELECT id, parent_id FROM catalog_category WHERE id = NEW.parent_id
          UNION
            SELECT c.id, c.parent_id
            FROM catalog_category AS c
            JOIN ancestors AS a ON c.id = a.parent_id
        )
        SELECT 1 FROM ancestors WHERE id = NEW.id
    ) THEN
        RAISE EXCEPTION 'category % cannot move under its own descendant %',
            NEW.id, NEW.parent_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'catalog_category_no_cycle',
                  HINT = 'Move the descendant out first, or pick another parent.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER catalog_category_no_cycle
    BEFORE INSERT OR UPDATE OF parent_id ON catalog_category
    FOR EACH ROW EXECUTE FUNCTION catalog_category_refuse_cycle();
