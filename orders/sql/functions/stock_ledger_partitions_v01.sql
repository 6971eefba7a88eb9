-- The stock ledger's monthly partitions (chapter 15): made ahead of time,
-- detached when they age out. Called by the maintenance task
-- (orders/partitions.py), the migration that partitions the ledger, and the
-- seed, which writes two years of history.
--
-- SECURITY DEFINER: creating, attaching and detaching partitions is the
-- owner's DDL, and the task runs as shop_app. So what a caller may ask is
-- bounded here, not in Python, which the app's role can go around:
--   * names are built from dates (format's %I) and every table is
--     schema-qualified, and search_path ends with pg_temp, so a caller's
--     temporary table can stand in for none of them;
--   * months from 2000 to ten years ahead can be made, which bounds how
--     many partitions a caller can add (each costs the planner);
--   * only months that ended at least MIN_RETENTION (12) months ago can be
--     detached, so no call takes this year's ledger away.
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

-- One month's partition, if it is missing; true if it made it. Rows that
-- arrived while their month had no partition wait in the default
-- partition: the new partition takes its month's rows from there before it
-- is attached, so nothing is lost and ATTACH finds no row of the new range
-- left in the default. ATTACH adds the month's foreign keys, which locks
-- the tables they reference (stock rows, orders) against writes until
-- COMMIT: the caller's lock_timeout bounds how long checkout may queue
-- behind it. Called only by the two definer functions below.
CREATE FUNCTION orders_stock_ledger_partition_make(p_month date) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_name  text := orders_stock_ledger_partition_name(p_month);
    v_start timestamptz := p_month::timestamp AT TIME ZONE 'UTC';
    v_end   timestamptz := (p_month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    v_saved text[];
BEGIN
    IF to_regclass(format('public.%I', v_name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE public.%I (LIKE public.orders_stock_movement '
        'INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
    -- Reached only through the parent: its grants decide who reads the
    -- ledger (the default privileges would grant each new table to the app
    -- roles on their own).
    EXECUTE format('REVOKE ALL ON public.%I FROM shop_app, shop_readonly', v_name);
    EXECUTE format(
        'WITH moved AS (DELETE FROM public.orders_stock_movement_default '
        '               WHERE created_at >= $1 AND created_at < $2 '
        '               RETURNING *) '
        'INSERT INTO public.%I SELECT * FROM moved', v_name)
    USING v_start, v_end;
    -- ATTACH checks the moved rows' foreign keys with one query, run as
    -- the owner and, unlike the foreign-key triggers, held to FORCE row-level
    -- security: with no context, orders_order shows the owner no row, and a
    -- moved checkout's movement would "violate" its key. So act as a job
    -- (whom the order policies show every order) for the ATTACH, and give
    -- the caller's context back after it.
    v_saved := ARRAY[current_setting('app.customer_id', true),
                     current_setting('app.is_staff', true),
                     current_setting('app.job', true)];
    PERFORM set_config('app.customer_id', '', true),
            set_config('app.is_staff', 'off', true),
            set_config('app.job', 'stock_ledger_partitions', true);
    EXECUTE format(
        'ALTER TABLE public.orders_stock_movement ATTACH PARTITION public.%I '
        'FOR VALUES FROM (%L) TO (%L)', v_name, v_start, v_end);
    PERFORM set_config('app.customer_id', coalesce(v_saved[1], ''), true),
            set_config('app.is_staff', coalesce(v_saved[2], ''), true),
            set_config('app.job', coalesce(v_saved[3], ''), true);
    RETURN true;
END;
$$;

-- Make the partitions of every month from p_from's to p_to's that are
-- missing, and of every month whose rows wait in the default partition
-- (the task was stopped past its months ahead); returns how many it made.
CREATE FUNCTION orders_stock_ledger_partitions_ensure(p_from date, p_to date)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_first date := date_trunc('month', p_from)::date;
    v_last  date := date_trunc('month', p_to)::date;
    v_month date;
    v_made  integer := 0;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR v_last < v_first
       OR v_first < date '2000-01-01'
       OR v_last > now() AT TIME ZONE 'UTC' + interval '10 years' THEN
        RAISE EXCEPTION 'months from % to %: not a range within 2000-01 and ten years ahead',
            p_from, p_to USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Two callers at once would both find a month missing; the second would
    -- fail on CREATE TABLE. One at a time, until COMMIT.
    PERFORM pg_advisory_xact_lock(hashtext('orders_stock_ledger_partitions'));
    FOR v_month IN
        SELECT m::date FROM generate_series(v_first, v_last, interval '1 month') AS m
        UNION
        SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC')::date
        FROM public.orders_stock_movement_default
        ORDER BY 1
    LOOP
        IF orders_stock_ledger_partition_make(v_month) THEN
            v_made := v_made + 1;
        END IF;
    END LOOP;
    RETURN v_made;
END;
$$;

-- Detach the monthly partitions that end on or before p_before, move them
-- to the schema orders_archive and drop their foreign keys: out of the
-- ledger's queries and plans, still on disk for whoever must keep them
-- (pg_dump -t, then DROP), and no longer tied to the live tables (a
-- detached partition keeps its foreign keys otherwise: deleting a stock
-- row would cascade into the archive, and each archived month would add
-- triggers to catalog_stock_level and orders_order). Returns their names.
-- A plain DETACH locks the ledger ACCESS EXCLUSIVE for a moment; the
-- caller's lock_timeout bounds the wait. (DETACH ... CONCURRENTLY would not
-- block writers, but PostgreSQL refuses it on a table with a default
-- partition, and it cannot run in a transaction block.)
CREATE FUNCTION orders_stock_ledger_partitions_detach(p_before date)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_name text;
BEGIN
    IF p_before IS NULL
       OR p_before > (now() AT TIME ZONE 'UTC' - interval '12 months')::date THEN
        RAISE EXCEPTION 'detach months before %: only months that ended a year ago or more',
            p_before USING ERRCODE = 'invalid_parameter_value';
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
        EXECUTE format(
            'ALTER TABLE public.orders_stock_movement DETACH PARTITION public.%I',
            v_name);
        EXECUTE format('ALTER TABLE public.%I SET SCHEMA orders_archive', v_name);
        EXECUTE format(
            'ALTER TABLE orders_archive.%I '
            'DROP CONSTRAINT orders_stock_movement_order_id_fk, '
            'DROP CONSTRAINT orders_stock_movement_stock_level_id_fk', v_name);
        RETURN NEXT v_name;
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION orders_stock_ledger_partition_make(date),
                       orders_stock_ledger_partitions_ensure(date, date),
                       orders_stock_ledger_partitions_detach(date) FROM PUBLIC;
-- The task (shop_app) makes and detaches; the seed (shop_loader) makes the
-- months of its history before it writes them.
GRANT EXECUTE ON FUNCTION orders_stock_ledger_partitions_ensure(date, date)
    TO shop_app, shop_loader;
GRANT EXECUTE ON FUNCTION orders_stock_ledger_partitions_detach(date) TO shop_app;
