-- Undo random_page_cost_v01.sql: back to the server's setting.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I RESET random_page_cost', current_database());
END;
$$;
