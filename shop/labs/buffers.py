"""Lab `buffers` (18): a working set larger than shared_buffers is read again
on every run; once it fits, the same run finds every page in the cache.

The lab starts a scratch cluster of its own (shop/scratch_cluster.py) with a
small shared_buffers, because the only way to give a server a different
cache is to restart it, and the shop's own primary must not be restarted
for a lab. A table of about 45 MB is read by index, the same few thousand
rows twice, and EXPLAIN (ANALYZE, BUFFERS) says of the second run how many
pages came from PostgreSQL's cache ("shared hit") and how many it had to
ask the operating system for ("read"). Then the cluster restarts with a
larger shared_buffers and the same two runs are made again. The cluster is
destroyed at the end, whatever happens.
"""

from __future__ import annotations

import json
import statistics

from shop.lab import Narrator, lab
from shop.scratch_cluster import ScratchCluster

NAME = "lab-buffers"
SMALL = "16MB"
LARGE = "128MB"
ROWS = 200_000
LOOKUPS = 3_000
TIMED = 7
FILL_SQL = """
CREATE TABLE lab_buffers (id integer PRIMARY KEY, pad text NOT NULL);
INSERT INTO lab_buffers
SELECT i, repeat(md5(i::text), 6) FROM generate_series(1, %(rows)s) AS i;
VACUUM ANALYZE lab_buffers;
"""
SIZES_SQL = """
SELECT pg_size_pretty(pg_table_size('lab_buffers')) AS table_size,
       pg_size_pretty(pg_indexes_size('lab_buffers')) AS index_size,
       current_setting('shared_buffers') AS shared_buffers
"""
# The same rows each run: every 66th id, spread over the whole table, so
# the pages they sit on are a large share of it.
LOOKUP_SQL = """
SELECT sum(length(pad)) FROM lab_buffers
WHERE id = ANY (ARRAY(SELECT generate_series(1, %(rows)s, %(step)s)))
"""


def second_run(connection) -> dict:
    """Shared hit and read blocks of the lookup's second run; then the median
    execution time of TIMED runs more (one run's time is at the mercy of
    whatever else the machine does)."""
    params = {"rows": ROWS, "step": ROWS // LOOKUPS}
    connection.execute(LOOKUP_SQL, params).fetchall()
    plans = [
        connection.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + LOOKUP_SQL, params
        ).fetchone()[0]
        for _ in range(1 + TIMED)
    ]
    plans = [json.loads(plan) if isinstance(plan, str) else plan for plan in plans]
    top = plans[0][0]["Plan"]
    return {
        "hit": top["Shared Hit Blocks"],
        "read": top["Shared Read Blocks"],
        "median ms": round(
            statistics.median(plan[0]["Execution Time"] for plan in plans[1:]), 1
        ),
    }


@lab(
    "buffers",
    chapter="18",
    summary="shared_buffers: a working set too large for it is read again, "
    "every run; one that fits is all hits",
)
def buffers(n: Narrator) -> None:
    # What a killed run left: stopped and removed, its server included.
    ScratchCluster(NAME).destroy()
    with ScratchCluster(NAME, conf={"shared_buffers": SMALL}) as cluster:
        n.step(f"A scratch cluster with shared_buffers = {SMALL}, and a table")
        cluster.initdb()
        cluster.start()
        with cluster.superuser() as su:
            n.show_sql(FILL_SQL, {"rows": ROWS})
            for statement in filter(str.strip, FILL_SQL.split(";")):
                su.execute(statement, {"rows": ROWS})
            n.show_sql(SIZES_SQL)
            n.table(
                ["table", "indexes", "shared_buffers"], su.execute(SIZES_SQL).fetchall()
            )

            n.step(
                f"The same {LOOKUPS:,} rows by index, twice; the second run's buffers"
            )
            n.show_sql(LOOKUP_SQL, {"rows": ROWS, "step": ROWS // LOOKUPS})
            small = second_run(su)
            n.table(
                ["shared hit", "read", f"median ms of {TIMED} more"],
                [tuple(small.values())],
            )
        n.expect(
            small["read"] > small["hit"] / 10,
            f"at {SMALL} the second run still reads pages from the operating "
            f"system ({small['read']:,} of {small['hit'] + small['read']:,}): the "
            "pages it needs do not fit, and each one evicts another it will need",
        )

        n.step(f"The same cluster restarted with shared_buffers = {LARGE}")
        cluster.configure({"shared_buffers": LARGE})
        cluster.restart()
        with cluster.superuser() as su:
            n.table(["shared_buffers"], su.execute("SHOW shared_buffers").fetchall())
            large = second_run(su)
            n.table(
                ["shared hit", "read", f"median ms of {TIMED} more"],
                [tuple(large.values())],
            )
        n.expect(
            large["read"] == 0 and large["hit"] > 0,
            f"at {LARGE} the second run finds every page in PostgreSQL's cache",
        )
        n.say(
            f"    {small['median ms']} ms at {SMALL} against {large['median ms']} ms "
            f"at {LARGE}: a read from the operating system's cache costs a system "
            "call and an 8 kB copy, a hit a lookup in shared memory (times are "
            "not checked: they depend on what else the machine is doing)"
        )
