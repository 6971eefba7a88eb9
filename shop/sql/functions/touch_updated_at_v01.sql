-- Keep updated_at honest for every writer, the ORM's .update() and raw SQL
-- included (Django's auto_now only fires on Model.save()). Each app attaches
-- it to its own tables in its own migrations.
CREATE FUNCTION shop_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
