-- Row-level security on the reviews (chapter 22): public to read, written
-- only by their author or staff.
-- The readers shop_ctx_*() and what the three settings mean:
-- shop/sql/rls/context_functions_v01.sql. ENABLE turns the policies on for
-- shop_app and shop_readonly; FORCE also for the table's owner.

-- Reviews are public to read; only their author (or staff) writes them.
-- Policies FOR one command apply to that command only: SELECT is open to
-- all, INSERT / UPDATE / DELETE are checked against the author.
ALTER TABLE catalog_review ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_review FORCE ROW LEVEL SECURITY;
CREATE POLICY catalog_review_public_read ON catalog_review
    FOR SELECT USING (true);
CREATE POLICY catalog_review_author_insert ON catalog_review
    FOR INSERT WITH CHECK (customer_id = (SELECT shop_ctx_customer_id()) OR (SELECT shop_ctx_is_staff()));
CREATE POLICY catalog_review_author_update ON catalog_review
    FOR UPDATE
    USING (customer_id = (SELECT shop_ctx_customer_id()) OR (SELECT shop_ctx_is_staff()))
    WITH CHECK (customer_id = (SELECT shop_ctx_customer_id()) OR (SELECT shop_ctx_is_staff()));
CREATE POLICY catalog_review_author_delete ON catalog_review
    FOR DELETE USING (customer_id = (SELECT shop_ctx_customer_id()) OR (SELECT shop_ctx_is_staff()));
