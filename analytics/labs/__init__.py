"""The analytics labs: joins (07), aggregations and window functions (08),
sharding with postgres_fdw (15), Redis's four jobs and the event log's
documents (19), the NoSQL models set beside the shop's SQL (20), the outbox
and its relay to MongoDB (21).

One module per lab, named after it; importing this package registers them.
"""

from analytics.labs import (  # noqa: F401
    joins,
    nosql_models,
    outbox,
    redis_roles,
    sharding,
    windows,
)
