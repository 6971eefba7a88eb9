-- Where history_record() stages the entries it was given, for one
-- transaction: COPY cannot skip the entries the gateway already holds, an
-- INSERT from this table can (history_record_v01.sql).
CREATE TEMPORARY TABLE fake_gateway_history (
    kind text NOT NULL,
    reference text NOT NULL,
    outcome text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    gateway_reference text NOT NULL
) ON COMMIT DROP
