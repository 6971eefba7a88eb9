-- A shard's database for one of the primary's databases (the development
-- database's is made by scripts/services.sh too; each test database gets
-- its own), owned by the role the user mappings log in as. CREATE DATABASE
-- takes no bound parameters: analytics/shards.py quotes the name with
-- psycopg.sql and runs this only when the database is missing.
CREATE DATABASE {database} OWNER shop_shard;
