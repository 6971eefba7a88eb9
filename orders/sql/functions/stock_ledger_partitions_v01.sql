-- The stock ledger's monthly partitions (chapter 15): made ahead of time,
-- detached when they age out. Called by the maintenance task
-- (orders/partitions.py), the migration that partitions the ledger, and the
-- seed, which writes two years of history.
--
-- SECURITY DEFINER: creating, attaching and detaching partitions is the
-- owner's DDL, and the task runs as shop_app. The functions take dates only
-- and build every name from them (format's %I), so a caller chooses which
-- months, never what SQL runs. search_path is pinned, as for every definer
-- function here (chapter 09).
--
-- Months are UTC months: a partition's bounds are timestamptz values, and
-- '2024-03-01' alone would mean midnight in whatever TimeZone the session
-- that created it had.

CREATE FUNCTION orders_stock_ledger_partition_name(p_month date) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT 'orders_stock_movement_' || to_char(p_month, '"y"YYYY"m"MM')
$$;

-- Make the partitions of every month from p_from's to p_to's, those that are
-- missing; returns how many it made. Rows that arrived while their month had
-- no partition wait in the default partition: each new partition takes its
-- month's rows from there before it is attached, so nothing is lost and
-- ATTACH finds no row of the new range left in the default. ATTACH adds the
-- month's foreign keys, which locks the tables they reference (stock rows,
-- orders) against writes until COMMIT: the caller's lock_timeout bounds
-- how long checkout may queue behind it.
CREATE FUNCTION orders_stock_ledger_partitions_ensure(p_from date, p_to date)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_month date := date_trunc('month', p_from)::date;
    v_last  date := date_trunc('month', p_to)::date;
    v_name  text;
    v_made  integer := 0;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR v_last < v_month
       OR v_last > v_month + interval '20 years' THEN
        RAISE EXCEPTION 'months from % to %: not a range of at most 20 years',
            p_from, p_to USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Two callers at once would both find a month missing; the second would
    -- fail on CREATE TABLE. One at a time, until COMMIT.
    PERFORM pg_advisory_xact_lock(hashtext('orders_stock_ledger_partitions'));
    WHILE v_month <= v_last LOOP
        v_name := orders_stock_ledger_partition_name(v_month);
        IF to_regclass(format('public.%I', v_name)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE public.%I (LIKE orders_stock_movement '
                'INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
            -- Reached only through the parent: its grants decide who reads
            -- the ledger (the default privileges would grant each new table
            -- to the app roles on their own).
            EXECUTE format('REVOKE ALL ON public.%I FROM shop_app, shop_readonly',
                           v_name);
            EXECUTE format(
                'WITH moved AS (DELETE FROM orders_stock_movement_default '
                '               WHERE created_at >= $1 AND created_at < $2 '
                '               RETURNING *) '
                'INSERT INTO public.%I SELECT * FROM moved', v_name)
            USING (v_month::timestamp AT TIME ZONE 'UTC'),
                  ((v_month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            EXECUTE format(
                'ALTER TABLE orders_stock_movement ATTACH PARTITION public.%I '
                'FOR VALUES FROM (%L) TO (%L)',
                v_name,
                v_month::timestamp AT TIME ZONE 'UTC',
                (v_month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            v_made := v_made + 1;
        END IF;
        v_month := (v_month + interval '1 month')::date;
    END LOOP;
    RETURN v_made;
END;
$$;

-- Detach the monthly partitions that end on or before p_before, and move
-- them to the schema orders_archive: out of the ledger's queries and plans,
-- still on disk for whoever must keep them (pg_dump -t, then DROP). Returns
-- their names. A plain DETACH takes an ACCESS EXCLUSIVE lock on the ledger
-- for a moment; the caller's lock_timeout bounds the wait (DETACH ...
-- CONCURRENTLY would not block writers, but cannot run in a function, which
-- is a transaction).
CREATE FUNCTION orders_stock_ledger_partitions_detach(p_before date)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_name text;
BEGIN
    IF p_before IS NULL THEN
        RAISE EXCEPTION 'detach before what month?'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('orders_stock_ledger_partitions'));
    FOR v_name IN
        SELECT c.relname
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.orders_stock_movement'::regclass
          AND c.relname ~ '^orders_stock_movement_y[0-9]{4}m[0-9]{2}$'
          -- The month a partition holds is in its name; it ends a month later.
          AND (to_date(right(c.relname, 8), '"y"YYYY"m"MM') + interval '1 month')
              <= date_trunc('month', p_before)
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE orders_stock_movement DETACH PARTITION public.%I',
                       v_name);
        EXECUTE format('ALTER TABLE public.%I SET SCHEMA orders_archive', v_name);
        RETURN NEXT v_name;
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION orders_stock_ledger_partitions_ensure(date, date),
                       orders_stock_ledger_partitions_detach(date) FROM PUBLIC;
-- The task (shop_app) makes and detaches; the seed (shop_loader) makes the
-- months of its history before it writes them.
GRANT EXECUTE ON FUNCTION orders_stock_ledger_partitions_ensure(date, date)
    TO shop_app, shop_loader;
GRANT EXECUTE ON FUNCTION orders_stock_ledger_partitions_detach(date) TO shop_app;
