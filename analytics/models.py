"""Analytics: reports, materialized views and the event log arrive with later issues."""
