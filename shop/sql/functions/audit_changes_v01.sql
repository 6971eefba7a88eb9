-- The audit trail's trigger function (chapter 23): every app attaches it to
-- its own sensitive tables, in its own migrations (accounts, orders). It
-- records each change in shop_audit_log (shop/sql/tables/audit_log_v01.sql),
-- whoever makes it: the app, a worker, psql, a migration.
--
-- Statement-level triggers with transition tables, like the stock ledger
-- (orders/sql/triggers/stock_ledger_v01.sql): one INSERT ... SELECT per
-- statement, so the seed's COPY of 200,000 orders writes its audit entries
-- in one statement instead of running the function 200,000 times. Measured
-- on `seed --scale large` (about 584,000 audited rows, 290 MB of log): a
-- 64 s seed took 82 s with these triggers and 105 s with row-level ones.
--
-- One function for every table. Its trigger arguments say how to read the
-- table: the first names the column that identifies a row, the rest name
-- columns whose values must never be copied (a password hash, a token key).
-- PL/pgSQL compiles a trigger function once per trigger, so the static
-- queries over audit_old / audit_new below plan against each table's own
-- transition tables.
--
-- SECURITY DEFINER, owned by shop_owner: the function runs with the owner's
-- rights, so it can append to the log although shop_app (whose statement
-- fired it) has no privilege on it at all. The fixed search_path keeps a
-- caller's objects (a temporary table or function named like ours) from
-- being used in the owner's name; the log is schema-qualified as well.
CREATE FUNCTION shop_audit_changes() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key_column constant text := TG_ARGV[0];
    secret_columns constant text[] := TG_ARGV[1:];
    redacted constant jsonb := to_jsonb('[redacted]'::text);
    -- Inside a SECURITY DEFINER function current_user is the owner. The role
    -- the statement ran as is the session's: the one SET ROLE chose, else
    -- the one that logged in. (A statement run by another SECURITY DEFINER
    -- function is thus logged under its caller, not that function's owner.)
    acting_role constant text :=
        COALESCE(NULLIF(current_setting('role'), 'none'), session_user);
    redactions jsonb;
BEGIN
    SELECT COALESCE(jsonb_object_agg(secret, redacted), '{}')
    INTO redactions
    FROM unnest(secret_columns) AS secret;

    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.shop_audit_log (table_name, row_pk, action, new_row, db_role)
        SELECT TG_TABLE_NAME, doc ->> key_column, TG_OP, doc || redactions, acting_role
        FROM (SELECT to_jsonb(n) AS doc FROM audit_new AS n) AS inserted;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO public.shop_audit_log (table_name, row_pk, action, old_row, db_role)
        SELECT TG_TABLE_NAME, doc ->> key_column, TG_OP, doc || redactions, acting_role
        FROM (SELECT to_jsonb(o) AS doc FROM audit_old AS o) AS deleted;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Old and new rows are paired by key; only the columns whose value
        -- changed are kept, and a secret that changed shows as changed
        -- without its value. A row with no changed column is not logged
        -- (a save() that wrote the same values). The FULL JOIN keeps a row
        -- whose key itself changed, as an entry with one side only.
        INSERT INTO public.shop_audit_log
            (table_name, row_pk, action, old_row, new_row, db_role)
        SELECT TG_TABLE_NAME, COALESCE(n.key, o.key), TG_OP,
               changed.old_values, changed.new_values, acting_role
        FROM (SELECT r.doc ->> key_column AS key, r.doc
              FROM (SELECT to_jsonb(t) AS doc FROM audit_old AS t) AS r) AS o
        FULL JOIN (SELECT r.doc ->> key_column AS key, r.doc
                   FROM (SELECT to_jsonb(t) AS doc FROM audit_new AS t) AS r) AS n
            ON n.key = o.key
        CROSS JOIN LATERAL (
            SELECT jsonb_object_agg(column_name, CASE
                       WHEN column_name = ANY (secret_columns) THEN redacted
                       ELSE o.doc -> column_name END)
                       FILTER (WHERE o.doc ? column_name) AS old_values,
                   jsonb_object_agg(column_name, CASE
                       WHEN column_name = ANY (secret_columns) THEN redacted
                       ELSE n.doc -> column_name END)
                       FILTER (WHERE n.doc ? column_name) AS new_values
            FROM jsonb_object_keys(COALESCE(o.doc, '{}') || COALESCE(n.doc, '{}'))
                AS column_name
            WHERE (o.doc -> column_name) IS DISTINCT FROM (n.doc -> column_name)
        ) AS changed
        WHERE changed.old_values IS NOT NULL OR changed.new_values IS NOT NULL;
    ELSE
        -- TRUNCATE fires no row triggers: record at least that it happened.
        INSERT INTO public.shop_audit_log (table_name, action, db_role)
        VALUES (TG_TABLE_NAME, TG_OP, acting_role);
    END IF;
    RETURN NULL;
END;
$$;
-- Triggers fire without an EXECUTE check; nobody needs to call this
-- directly. Without EXECUTE, shop_app also cannot attach it to a temporary
-- table of its own and forge entries that name a real table.
REVOKE ALL ON FUNCTION shop_audit_changes() FROM PUBLIC;
