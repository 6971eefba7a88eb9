-- Least privilege for the app's roles (DESIGN.md "Database roles").
-- Run by a migration as shop_owner, so every database, the test database
-- included, gets the same grants; default privileges are stored per
-- database, which is why they live here and not in scripts/.
GRANT USAGE ON SCHEMA public TO shop_app, shop_readonly;

-- Tables that already exist (Django's own, created before this migration).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO shop_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO shop_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO shop_readonly;

-- Tables shop_owner creates from now on.
ALTER DEFAULT PRIVILEGES FOR ROLE shop_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO shop_app;
ALTER DEFAULT PRIVILEGES FOR ROLE shop_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO shop_app;
ALTER DEFAULT PRIVILEGES FOR ROLE shop_owner IN SCHEMA public
    GRANT SELECT ON TABLES TO shop_readonly;

-- The app reads which migrations ran; only the owner records new ones.
REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM shop_app;
