-- The shop's database roles (DESIGN.md, "Database roles"), created idempotently
-- by scripts/services.sh as the cluster superuser. Table privileges are not
-- granted here: a migration grants them, so every database (tests included)
-- gets the same ones.
SELECT 'CREATE ROLE shop_owner' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_owner') \gexec
SELECT 'CREATE ROLE shop_app' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_app') \gexec
SELECT 'CREATE ROLE shop_readonly' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_readonly') \gexec
SELECT 'CREATE ROLE shop_loader' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_loader') \gexec
SELECT 'CREATE ROLE shop_auditor' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_auditor') \gexec
SELECT 'CREATE ROLE shop_replicator' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_replicator') \gexec
SELECT 'CREATE ROLE shop_monitor' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_monitor') \gexec

-- Owns the schema and runs migrations; CREATEDB so the test runner can make test_shop.
ALTER ROLE shop_owner LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'owner_pw';
-- The web app and workers: DML only. Never owner, never superuser, never BYPASSRLS,
-- so row-level security applies to every query it makes.
ALTER ROLE shop_app LOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_pw';
ALTER ROLE shop_readonly LOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'ro_pw';
-- The seed's bulk loader, and nothing else: COPY FROM refuses tables with
-- row-level security unless the role bypasses it, and the seed writes every
-- customer's rows at once. SELECT and INSERT only (a migration grants them);
-- the app never connects as it (chapter 22).
ALTER ROLE shop_loader LOGIN BYPASSRLS NOCREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION PASSWORD :'loader_pw';
-- Never logs in: pgaudit logs every statement that uses a privilege this role
-- holds (pgaudit.role), so its grants choose what object auditing records.
ALTER ROLE shop_auditor NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE shop_replicator LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'repl_pw';
-- Monitoring (chapter 24): the statistics views and every role's statement
-- text in pg_stat_statements, through pg_read_all_stats, and nothing else. No
-- table is granted to it anywhere, so it reads no row of the shop; it
-- connects to the shop's database as PUBLIC may (CONNECT is PUBLIC's by
-- default, and the test databases Django creates get the same).
ALTER ROLE shop_monitor LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'monitor_pw';
SELECT 'GRANT pg_read_all_stats TO shop_monitor'
WHERE NOT pg_has_role('shop_monitor', 'pg_read_all_stats', 'MEMBER') \gexec
-- A stuck statement in the app fails instead of hanging a request forever.
ALTER ROLE shop_app SET statement_timeout = '30s';
ALTER ROLE shop_app SET idle_in_transaction_session_timeout = '60s';
-- No JIT for the app's short queries: the planner prices a row-level
-- security subplan as if it ran for every row, a staff report's estimate
-- then passes jit_above_cost, and compiling took longer than running the
-- query (docs/benchmarks.md, "Row-level security").
ALTER ROLE shop_app SET jit = off;
-- The reports' role on the replica, likewise: a report's statement is cut
-- off (the staff report transaction sets its own, shorter, per
-- transaction: shop/replica.py), and JIT compiles nothing.
ALTER ROLE shop_readonly SET statement_timeout = '60s';
ALTER ROLE shop_readonly SET jit = off;
-- A look at the statistics is short; one that is not is cut off.
ALTER ROLE shop_monitor SET statement_timeout = '10s';
