-- shop_loader (scripts/sql/roles.sql) bulk-loads the seed with COPY, which
-- row-level security refuses for every role that does not bypass it. It
-- bypasses the policies, so its grants are all that stands between it and
-- every customer's rows: it gets nothing by default, no table now or later.
-- Each app grants it exactly the tables its seed phases write and read, in
-- its own migration (shop/accounts/sql/grants/, catalog/sql/grants/,
-- orders/sql/grants/), so payments' gateway ledger, idempotency keys, carts
-- and API tokens stay out of its reach. The schema is shop's to open.
GRANT USAGE ON SCHEMA public TO shop_loader;
