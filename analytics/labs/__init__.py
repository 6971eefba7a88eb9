"""The analytics labs: the outbox and its relay to MongoDB (21).

One module per lab, named after it; importing this package registers them.
"""

from analytics.labs import outbox  # noqa: F401
