DROP FUNCTION orders_checkout_place(bigint, text, text, text, text, text);
