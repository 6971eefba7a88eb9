"""What the labs of chapters 06 and 14 share: a catalogue worth planning for,
and EXPLAIN run, printed and read back.

The labs print a plan exactly as PostgreSQL writes it (the text format of
psql and of `make plans`) and check their claims against that same text,
so the transcript shows what was checked. `Plan` reads the few things the
claims need: each node's kind, index and table, its estimated and actual
rows, the lines under it (Index Cond, Buffers, Heap Fetches, WAL, ...) and
the execution time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from catalog.labs.rows import catalog_names
from shop.lab import Narrator
from shop.sql_files import read_sql

CATALOG_BULK_SQL_FILE = "catalog/sql/labs/catalog_bulk.sql"

# "->  Index Scan Backward using catalog_product_price_idx on catalog_product
# (cost=0.29..2.51 rows=17100 width=409) (actual time=0.03..0.17 rows=21
# loops=1)". A node that never ran says "(never executed)" instead, and
# with TIMING OFF there is no "time=".
NODE = re.compile(
    r"^\s*(?:->\s+)?(?P<kind>[A-Z][A-Za-z -]*?)"
    r"(?: using (?P<index>\S+))?(?: on (?P<relation>\S+)(?: \w+)?)?"
    r"\s+\(cost=\S+ rows=(?P<estimate>\d+) width=\d+\)"
    r"(?: \(actual (?:time=\S+ )?rows=(?P<rows>\d+) loops=(?P<loops>\d+)\)"
    r"| \(never executed\))?$"
)
DETAIL = re.compile(r"^\s*(?P<key>[A-Z][A-Za-z -]*): (?P<value>.*)$")
# "shared hit=3, local hit=149 read=255": temporary tables use local buffers.
BUFFER_COUNTS = re.compile(r"(?:hit|read)=(\d+)")
WAL_BYTES = re.compile(r"bytes=(?P<bytes>\d+)")
EXECUTION = re.compile(r"^Execution Time: (?P<ms>[\d.]+) ms$")
SIZE_SQL = "SELECT pg_relation_size(%s::regclass) AS bytes"


def catalog_bulk(n: Narrator, tag: str, *, products: int, cursor, categories: int = 4):
    """Insert `products` products (one variant each) in `categories` categories.

    Category slugs are lab-TAG-1 to lab-TAG-N; returns (categories,
    products, variants) as counted.
    """
    names = catalog_names(tag)
    (counts,) = n.sql(
        read_sql(CATALOG_BULK_SQL_FILE),
        {**names, "categories": categories, "products": products},
        cursor=cursor,
        label=f"setup: {products:,} products in {categories} categories, one statement",
    )
    return counts


@dataclass
class Node:
    kind: str  # "Index Scan", "Seq Scan", "Sort", "Limit", ...
    index: str | None  # the index a scan reads ("using X", or a bitmap's "on X")
    relation: str | None
    estimate: int  # the planner's rows
    rows: int | None  # actual rows per loop; None without ANALYZE
    loops: int | None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def blocks(self) -> int:
        """Pages this node and its children touched: found in a buffer (hit)
        or read into one, shared or local (a temporary table's)."""
        return sum(map(int, BUFFER_COUNTS.findall(self.details.get("Buffers", ""))))

    @property
    def wal_bytes(self) -> int:
        found = WAL_BYTES.search(self.details.get("WAL", ""))
        return int(found["bytes"]) if found else 0

    def __str__(self):
        where = f" using {self.index}" if self.index else ""
        return f"{self.kind}{where}" + (f" on {self.relation}" if self.relation else "")


@dataclass
class Plan:
    text: str
    nodes: list[Node]
    execution_ms: float | None

    @classmethod
    def parse(cls, text: str) -> Plan:
        nodes: list[Node] = []
        execution_ms = None
        planning = False
        for line in text.splitlines():
            if line.startswith("Planning"):
                # Planning's buffers are the planner's own, no node's.
                planning = True
            elif found := EXECUTION.match(line):
                execution_ms = float(found["ms"])
            elif found := NODE.match(line):
                # A node after "Planning:" starts the next statement's plan
                # (a `make plans` snippet holds each statement of a request).
                planning = False
                index, relation = found["index"], found["relation"]
                if found["kind"] == "Bitmap Index Scan":
                    index, relation = relation, None
                rows, loops = found["rows"], found["loops"]
                nodes.append(
                    Node(
                        found["kind"],
                        index,
                        relation,
                        int(found["estimate"]),
                        None if rows is None else int(rows),
                        None if loops is None else int(loops),
                    )
                )
            elif (found := DETAIL.match(line)) and nodes and not planning:
                nodes[-1].details.setdefault(found["key"], found["value"])
        return cls(text, nodes, execution_ms)

    @property
    def top(self) -> Node:
        return self.nodes[0]

    def find(self, kind: str | None = None, *, index=None, relation=None) -> list:
        """The nodes of this kind ("Index Scan" finds "Index Scan Backward"
        too), using this index, on this table."""
        return [
            node
            for node in self.nodes
            if (kind is None or node.kind.startswith(kind))
            and (index is None or node.index == index)
            and (relation is None or node.relation == relation)
        ]


def explain(n: Narrator, sql: str, params=None, *, cursor, what: str | None = None):
    """Show `EXPLAIN (ANALYZE, BUFFERS) sql` on `cursor`, print the plan, read it.

    The lab's own cursor: its transaction holds the rows it made and is
    rolled back at the end. `what` names a long statement the narrator has
    already shown ("the product list's query, above"); without it the
    statement is shown.
    """
    statement = "EXPLAIN (ANALYZE, BUFFERS) "
    if what is None:
        n.show_sql(statement + sql, params)
    else:
        n.show_sql(f"{statement}<{what}>", None)
    cursor.execute(statement + sql, params)
    text = "\n".join(row for (row,) in cursor.fetchall())
    for line in text.splitlines():
        n.say(f"       {line}")
    return Plan.parse(text)


def relation_bytes(cursor, name: str) -> int:
    """The size on disk of a table or index, in bytes (its main fork)."""
    cursor.execute(SIZE_SQL, [name])
    return cursor.fetchone()[0]
