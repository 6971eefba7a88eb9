-- catalog_search_posting: each word (lexeme) of each product's search
-- document, with ts_rank_cd(search_document, that word). A one-word search
-- reads its best matches from the posting index in rank order and stops
-- after a page (catalog.selectors.product_list, chapter 06). Through the GIN
-- index it had to fetch and rank every product holding the word: "lamp" is
-- in 12,572 products of the large seed, and ranking them was most of the
-- request.
--
-- The rank is PostgreSQL's own ts_rank_cd, called here with a query of the
-- one word, so the posting holds the very value the GIN path computes (as
-- double precision, the type the product list compares). It depends only on
-- the document, so it changes only when the name or the description does.
--
-- What it costs the writers: a new product writes a row per distinct word
-- (22 on average in the large seed); a renamed product rewrites the rows
-- of the words whose rank changed, adds its new words and deletes its lost
-- ones. Every other UPDATE of a product (a price, the stock flag) does not
-- fire the trigger at all: UPDATE OF names the columns, and WHEN compares
-- the documents. A deleted product's rows go by the foreign key's CASCADE.

-- The postings of a search document: one row per lexeme. unnest() gives the
-- lexemes, and each is quoted into a tsquery of that word alone, as the
-- tsquery input syntax wants it (quotes and backslashes doubled), so that
-- no lexeme is parsed or stemmed again.
CREATE FUNCTION catalog_search_postings(document tsvector)
RETURNS TABLE (lexeme text, rank double precision)
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT
        word.lexeme,
        ts_rank_cd(
            document,
            ('''' || replace(replace(word.lexeme, '\', '\\'), '''', '''''') || '''')::tsquery
        )::double precision
    FROM unnest(document) AS word
$$;

-- New products, a statement at a time: the seed COPYs 100,000 in one.
CREATE FUNCTION catalog_product_insert_postings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO catalog_search_posting (product_id, lexeme, rank)
    SELECT p.id, posting.lexeme, posting.rank
    FROM new_rows AS p
    CROSS JOIN LATERAL catalog_search_postings(p.search_document) AS posting;
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_product_postings_insert
    AFTER INSERT ON catalog_product
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_product_insert_postings();

-- A changed document: the words it lost go, the words it gained come, and
-- the words it kept are rewritten only where their rank moved. Row by row
-- (a transition table cannot be combined with a column list), and only
-- for the rows whose document did change. The product's row lock, held by
-- the UPDATE that fired this, orders two writers of one product.
CREATE FUNCTION catalog_product_update_postings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM catalog_search_posting AS posting
    WHERE posting.product_id = NEW.id
      AND NOT EXISTS (
          SELECT 1
          FROM catalog_search_postings(NEW.search_document) AS fresh
          WHERE fresh.lexeme = posting.lexeme
      );

    INSERT INTO catalog_search_posting (product_id, lexeme, rank)
    SELECT NEW.id, fresh.lexeme, fresh.rank
    FROM catalog_search_postings(NEW.search_document) AS fresh
    ON CONFLICT (product_id, lexeme) DO UPDATE
        SET rank = EXCLUDED.rank
        WHERE catalog_search_posting.rank IS DISTINCT FROM EXCLUDED.rank;
    RETURN NULL;
END;
$$;

CREATE TRIGGER catalog_product_postings_update
    AFTER UPDATE OF name, description ON catalog_product
    FOR EACH ROW
    WHEN (OLD.search_document IS DISTINCT FROM NEW.search_document)
    EXECUTE FUNCTION catalog_product_update_postings();

-- The products that exist when this is installed.
INSERT INTO catalog_search_posting (product_id, lexeme, rank)
SELECT p.id, posting.lexeme, posting.rank
FROM catalog_product AS p
CROSS JOIN LATERAL catalog_search_postings(p.search_document) AS posting;
