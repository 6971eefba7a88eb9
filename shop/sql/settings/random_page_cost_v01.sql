-- The planner's price of reading a page out of order, for this database
-- and every query of every app in it (hence shop's, not one app's):
-- 1.1 instead of the default 4, which models a spinning disk. The shop's
-- working set is in memory (or on SSD), where a random read costs about
-- what a sequential one does.
--
-- Measured on the large seed (`make plans`): with 4, a ranked search for a
-- common word ("lamp", 12% of the catalogue, a prefix while typed) read the
-- whole product table, 100,000 rows, rather than its GIN index, and took
-- about twice as long (60 ms against 25). Database-wide, because the
-- planner has no such knob per table; it applies to sessions that start
-- after it, and to every database migrated from now on (the tests', the
-- benchmarks' scratch ones). ALTER DATABASE needs the database's owner,
-- shop_owner, who runs the migrations.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET random_page_cost = 1.1', current_database());
END;
$$;
