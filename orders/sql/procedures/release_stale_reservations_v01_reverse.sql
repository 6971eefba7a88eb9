DROP PROCEDURE orders_release_stale_reservations(interval, integer, integer);
