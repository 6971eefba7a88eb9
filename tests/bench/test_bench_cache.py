"""bench/cache.py's own code, once at the smallest size, so `make bench` cannot rot.

As tests/bench/test_bench.py does for the other benchmarks: on the suite's
test database, not in main()'s scratch one.
"""

import random

import pytest
from django.db import connections

from bench import cache as bench_cache
from bench import report
from catalog import cache as catalog_cache
from shop.seeding import plan_for, seed_database
from tests.dbs import ALL_DATABASES, wait_for_replica


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_the_cache_benchmark_measures_a_tiny_seed_and_renders_its_report():
    if not catalog_cache.enabled():
        pytest.skip("the catalog cache needs Redis: REDIS_URL is empty")
    plan = plan_for("small", products=12, variants=24, reviews=0, orders=0)
    seed_database(plan=plan)
    wait_for_replica()
    reads = bench_cache.build_reads(random.Random(18))

    bench_cache.measure(reads, repeat=2)

    for read in reads:
        assert read.statements[("view", "warm")] == 0
        assert read.statements[("request", "warm")] == 0
        assert read.statements[("view", "cold")] >= 1
        assert len(read.seconds[("request", "cold")]) == 2
    text = bench_cache.render(
        reads,
        server=report.server_facts(connections["default"]),
        load=report.load_average(),
        command="pytest",
        products=12,
        minutes=0.0,
    )
    assert "product detail | view" in text
