SET client_min_messages = warning;
-- Extensions only a superuser may create. Run on template1 too, so that the
-- test database Django creates (CREATE DATABASE test_shop) inherits them.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
