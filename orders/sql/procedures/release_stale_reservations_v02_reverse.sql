-- Back to version 1: drop version 2, then the migration recreates v01.
DROP PROCEDURE orders_release_stale_reservations(interval, integer, integer);
