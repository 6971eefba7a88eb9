-- Back to version 2: drop version 3, then the migration recreates v02.
DROP PROCEDURE orders_release_stale_reservations(interval, integer, integer);
