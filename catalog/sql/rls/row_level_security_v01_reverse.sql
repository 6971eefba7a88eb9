-- Undo row_level_security_v01.sql.
DROP POLICY catalog_review_author_delete ON catalog_review;
DROP POLICY catalog_review_author_update ON catalog_review;
DROP POLICY catalog_review_author_insert ON catalog_review;
DROP POLICY catalog_review_public_read ON catalog_review;
ALTER TABLE catalog_review NO FORCE ROW LEVEL SECURITY;
ALTER TABLE catalog_review DISABLE ROW LEVEL SECURITY;
