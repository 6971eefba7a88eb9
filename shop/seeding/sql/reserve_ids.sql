-- Take `count` primary keys for `table` from its own identity sequence.
-- nextval() needs only USAGE on the sequence, which shop_app has; setval()
-- would need UPDATE, which it deliberately does not. Sorted, so the same
-- rows get the same keys when the sequence starts from the same value.
SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) AS id
FROM generate_series(1, %(count)s)
ORDER BY id
