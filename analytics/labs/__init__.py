"""The analytics labs: joins (07), aggregations and window functions (08),
the outbox and its relay to MongoDB (21).

One module per lab, named after it; importing this package registers them.
"""

from analytics.labs import joins, outbox, windows  # noqa: F401
