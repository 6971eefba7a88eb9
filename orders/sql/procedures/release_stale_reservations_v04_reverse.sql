-- Back to version 3: drop version 4, then the migration recreates v03.
DROP PROCEDURE orders_release_stale_reservations(interval, integer, integer);
