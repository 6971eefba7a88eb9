-- A lab's own customers, in one statement: `count` users, each with its
-- customer, e-mailed <email_prefix>1@example.com, <email_prefix>2@... so
-- that the lab can find and delete them.
WITH new_user AS (
    INSERT INTO accounts_user
        (password, is_superuser, email, is_active, is_staff, date_joined)
    SELECT '!', false, %(email_prefix)s || n || '@example.com', true, false, now()
    FROM generate_series(1, %(count)s) AS n
    RETURNING id, email
), customer AS (
    INSERT INTO accounts_customer (user_id, phone, created_at)
    SELECT id, '', now() FROM new_user
    RETURNING id, user_id
)
SELECT customer.id AS customer_id, customer.user_id, new_user.email
FROM customer
JOIN new_user ON new_user.id = customer.user_id
ORDER BY customer.id
