-- The audit trail: who changed which row of a sensitive table, and how
-- (chapter 23). Rows are written only by the trigger function in
-- shop/sql/triggers/audit_v01.sql; nothing in the app reads or writes here.
--
-- A table made by SQL, not a Django model, on purpose: the test runner's
-- flush and `manage.py flush` TRUNCATE every model's table, and this one
-- refuses TRUNCATE (below). It also has no foreign keys: an entry must
-- outlive the row it describes, deleted users and orders included.
CREATE TABLE shop_audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY
        CONSTRAINT shop_audit_log_pkey PRIMARY KEY,
    -- clock_timestamp(), not now(): entries of one long transaction keep the
    -- order and spacing in which their statements ran.
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    table_name text NOT NULL,
    -- Text, so that one column holds any table's key; NULL for TRUNCATE.
    row_pk text,
    action text NOT NULL,
    -- Whole rows for INSERT and DELETE; for UPDATE only the columns that
    -- changed, before and after. Secrets are replaced by "[redacted]".
    old_row jsonb,
    new_row jsonb,
    -- The role the statement ran as, and the role that logged in (they
    -- differ after SET ROLE).
    db_role text NOT NULL DEFAULT current_user,
    session_role text NOT NULL DEFAULT session_user,
    -- Who the app acted for: the transaction-local settings that
    -- shop/db_context.py sets. NULL when unset (psql, migrations, the seed).
    app_user_id bigint DEFAULT NULLIF(current_setting('app.user_id', true), '')::bigint,
    app_customer_id bigint
        DEFAULT NULLIF(current_setting('app.customer_id', true), '')::bigint,
    -- Ties the entries of one transaction together, and to the server log.
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- NULL over a Unix socket.
    client_addr inet DEFAULT inet_client_addr(),
    CONSTRAINT shop_audit_log_action_valid
        CHECK (action IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    CONSTRAINT shop_audit_log_rows_match_action CHECK (
        CASE action
            WHEN 'INSERT' THEN old_row IS NULL AND new_row IS NOT NULL
            -- One side is missing only if an UPDATE changed the row's key.
            WHEN 'UPDATE' THEN old_row IS NOT NULL OR new_row IS NOT NULL
            WHEN 'DELETE' THEN old_row IS NOT NULL AND new_row IS NULL
            ELSE old_row IS NULL AND new_row IS NULL AND row_pk IS NULL
        END
    )
);

CREATE INDEX shop_audit_log_row_idx
    ON shop_audit_log (table_name, row_pk, occurred_at);
-- BRIN: occurred_at grows with the table, so a few pages of summaries
-- serve the time-range reads of an audit and of the retention purge.
CREATE INDEX shop_audit_log_occurred_at_brin
    ON shop_audit_log USING brin (occurred_at);

-- Append-only for the app. The default privileges of shop/sql/grants_v01.sql
-- gave shop_app DML and shop_readonly SELECT on this table when it was
-- created; take them all back. shop_app cannot read it either: the log keeps
-- what was deleted and every past address, and a compromised app should not
-- learn what was recorded about it. Auditors read as shop_owner (or a role
-- made for them); the replica's analytics role has no business here.
REVOKE ALL ON shop_audit_log FROM shop_app, shop_readonly;
REVOKE ALL ON SEQUENCE shop_audit_log_id_seq FROM shop_app, shop_readonly;

-- Even the owner may not rewrite history: UPDATE is always refused, DELETE
-- only for entries older than the cutoff shop_audit_log_purge() sets, and
-- TRUNCATE never. The owner can still disable or drop the trigger, or drop
-- the table (it owns them): these rules stop an accidental or casual edit,
-- and make a deliberate one take DDL, which log_statement = 'ddl' records.
-- Evidence that even the owner cannot touch has to leave the database: WAL
-- archives and backups (chapter 24).
CREATE FUNCTION shop_audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.occurred_at
            < NULLIF(current_setting('shop.audit_purge_before', true), '')::timestamptz
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'shop_audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Old entries go only through shop_audit_log_purge(before).';
END;
$$;

CREATE TRIGGER shop_audit_log_append_only
    BEFORE UPDATE OR DELETE ON shop_audit_log
    FOR EACH ROW EXECUTE FUNCTION shop_audit_log_refuse_change();
CREATE TRIGGER shop_audit_log_no_truncate
    BEFORE TRUNCATE ON shop_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_log_refuse_change();

-- Retention: the one way entries leave. The cutoff lives in a
-- transaction-local setting that the guard above reads, and is cleared
-- before returning, so it cannot widen later statements of the caller's
-- transaction. The purge itself is logged: a gap in the trail is explained.
CREATE FUNCTION shop_audit_log_purge(before timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    purged bigint;
BEGIN
    PERFORM set_config('shop.audit_purge_before', before::text, true);
    DELETE FROM shop_audit_log WHERE occurred_at < before;
    GET DIAGNOSTICS purged = ROW_COUNT;
    PERFORM set_config('shop.audit_purge_before', '', true);
    INSERT INTO shop_audit_log (table_name, action, old_row)
    VALUES ('shop_audit_log', 'DELETE',
            jsonb_build_object('purged_entries', purged, 'occurred_before', before));
    RETURN purged;
END;
$$;
-- Functions are executable by PUBLIC by default; the purge needs DELETE on
-- the log anyway, but a function nobody else may call says so plainly.
REVOKE ALL ON FUNCTION shop_audit_log_purge(timestamptz) FROM PUBLIC;
