COPY fake_gateway_history (kind, reference, outcome, amount, gateway_reference)
FROM STDIN
