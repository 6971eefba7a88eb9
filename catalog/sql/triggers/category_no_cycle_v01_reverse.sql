DROP TRIGGER catalog_category_no_cycle ON catalog_category;
DROP FUNCTION catalog_category_refuse_cycle();
