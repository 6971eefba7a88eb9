SET client_min_messages = warning;
-- Extensions only a superuser may create. Run on template1 too, so that the
-- test database Django creates (CREATE DATABASE test_shop) inherits them.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
-- pgaudit only where the server preloads it (scripts/services.sh does when
-- the package is installed); its event triggers name the objects of DDL.
DO $$
BEGIN
    IF 'pgaudit' = ANY (string_to_array(
            replace(current_setting('shared_preload_libraries'), ' ', ''), ','))
    THEN
        CREATE EXTENSION IF NOT EXISTS pgaudit;
    END IF;
END;
$$;
