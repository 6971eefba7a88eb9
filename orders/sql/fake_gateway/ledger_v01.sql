-- The fake payment gateway's own records (orders/payments.py).
--
-- This table stands for the gateway's database, which a real shop never
-- sees. It lives in the shop's PostgreSQL only so that every process that
-- can call the gateway (web workers, the Celery worker, the recovery
-- command) talks to one gateway with one memory. The shop's code never
-- reads it except through the gateway's functions (charge, charge_status,
-- refund), and it has no foreign key to any shop table: a gateway knows the
-- shop's orders only by the reference the shop sends with each request.
CREATE TABLE orders_fake_gateway_ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    -- The merchant's reference (the order's payment_reference). A second
    -- request of the same kind with the same reference gets the first one's
    -- answer: money moves once per reference, as with a real gateway's
    -- idempotency keys.
    reference text NOT NULL,
    outcome text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    -- The gateway's own id of the capture, decline or refund.
    gateway_reference text NOT NULL,
    -- The test mode the card token chose, which the refund reads too.
    mode text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_fake_gateway_ledger_once_per_reference
        UNIQUE (kind, reference),
    CONSTRAINT orders_fake_gateway_ledger_gateway_reference_uniq
        UNIQUE (gateway_reference),
    CONSTRAINT orders_fake_gateway_ledger_outcome_valid CHECK (
        (kind = 'charge' AND outcome IN ('captured', 'declined'))
        OR (kind = 'refund' AND outcome = 'refunded')),
    CONSTRAINT orders_fake_gateway_ledger_amount_non_negative CHECK (amount >= 0)
);

-- The default privileges (shop/sql/grants_v01.sql) give every new table to
-- the read-only and loader roles as well. Not this one: only the gateway's
-- own connection, as the app's role, reads or writes it.
REVOKE ALL ON orders_fake_gateway_ledger FROM shop_readonly, shop_loader;
