-- shop_loader (scripts/sql/roles.sql) bulk-loads the seed with COPY, which
-- row-level security refuses for every role that does not bypass it. It
-- reads what it links to and appends rows; it never updates or deletes, and
-- it gets nothing on the audit trail or on the migration history.
GRANT USAGE ON SCHEMA public TO shop_loader;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO shop_loader;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO shop_loader;
REVOKE ALL ON shop_audit_log FROM shop_loader;
REVOKE INSERT ON django_migrations FROM shop_loader;

ALTER DEFAULT PRIVILEGES FOR ROLE shop_owner IN SCHEMA public
    GRANT SELECT, INSERT ON TABLES TO shop_loader;
ALTER DEFAULT PRIVILEGES FOR ROLE shop_owner IN SCHEMA public
    GRANT USAGE ON SEQUENCES TO shop_loader;
