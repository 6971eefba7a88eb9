-- The fake gateway learns of money it took before it kept a ledger: orders
-- paid, and refunds made, before migration 0008 created the ledger, or
-- written by the seed of an older version. A real gateway would know them
-- already, since it took that money; without this, cancelling such an
-- order asked the gateway to refund a charge it had never heard of, was
-- refused, and the refund was promised and never made.
--
-- Each order's charge and refund under the order's payment_reference, with
-- the gateway id on the shop's payment row where it has one, a new one
-- where it has none. ON CONFLICT DO NOTHING (either unique constraint): an
-- entry the gateway already holds, for an order paid through it, stays as
-- it is. The mode 'history' marks these entries, for the reverse.

-- Row-level security is FORCEd on orders and payments, for the owner
-- running this migration too: read them as staff, until COMMIT.
SELECT set_config('app.is_staff', 'on', true);
INSERT INTO orders_fake_gateway_ledger
    (kind, reference, outcome, amount, gateway_reference, mode)
SELECT 'charge', o.payment_reference, 'captured', p.amount,
       coalesce(nullif(p.gateway_reference, ''),
                'fake_ch_' || left(replace(gen_random_uuid()::text, '-', ''), 16)),
       'history'
FROM orders_payment AS p
JOIN orders_order AS o ON o.id = p.order_id
WHERE p.status = 'captured'
ORDER BY p.id
ON CONFLICT DO NOTHING;

INSERT INTO orders_fake_gateway_ledger
    (kind, reference, outcome, amount, gateway_reference, mode)
SELECT 'refund', o.payment_reference, 'refunded', p.amount,
       coalesce(nullif(p.gateway_reference, ''),
                'fake_re_' || left(replace(gen_random_uuid()::text, '-', ''), 16)),
       'history'
FROM orders_payment AS p
JOIN orders_order AS o ON o.id = p.order_id
WHERE p.status = 'refunded'
ORDER BY p.id
ON CONFLICT DO NOTHING;
