"""The benchmarks' own code, run once at the smallest size, so `make bench` cannot rot.

`make bench` takes minutes and runs in no CI job, so changes elsewhere
broke it unseen: checkout came to return outcomes instead of a status, and
the default alias came to be pooled, so its scratch database could no
longer be dropped. These tests run each benchmark's parts on the suite's test database,
a few checkouts and a tiny seed, and check what the benchmark checks: every
checkout placed its order, the ways returned the same rows. Not `main()`:
its scratch database is created and dropped by the same Django call as the
test database, which must stay where it is.
"""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, connections

from bench import checkout as bench_checkout
from bench import report
from bench import rls as bench_rls
from shop.seeding import plan_for, seed_database
from tests.dbs import ALL_DATABASES

ROOT = Path(__file__).resolve().parents[2]
on_the_test_database = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def test_the_benchmarks_open_plain_connections_so_their_database_can_be_dropped():
    """bench/settings.py pools no alias: a pool keeps its connections open
    after the run, and DROP DATABASE refused the scratch database ("being
    accessed by other users"). Read in a process of its own: it changes
    shop.settings.base's LOGGING in place, which the suite's settings share.
    """
    script = (
        "import json, bench.settings as s; "
        "print(json.dumps({a: 'pool' in c['OPTIONS'] for a, c in s.DATABASES.items()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pooled = json.loads(done.stdout)
    assert "default" in pooled
    assert not any(pooled.values()), pooled


@on_the_test_database
def test_the_checkout_benchmark_runs_every_way_and_renders_its_report():
    clients, checkouts = 2, 2
    # Each cell buys with (checkouts / clients + 1) customers per client,
    # the warm-up included; statements_per_checkout one per cart size.
    per_cell = clients * (checkouts // clients + 1)
    sized = len(bench_checkout.CART_SIZES) * len(bench_checkout.WAYS)
    shop = bench_checkout.build_shop(customers=1 + sized + per_cell, spread=clients)
    last = shop.customers[-1]
    bench_checkout.fill_carts({last: [shop.hot]})

    bench_checkout.app_place(last)
    statements = bench_checkout.statements_per_checkout(shop)
    cells = [
        bench_checkout.run_cell(shop, way, scenario, clients, checkouts)
        for scenario in bench_checkout.SCENARIOS
        for way in bench_checkout.WAYS
    ]

    assert set(statements) == set(bench_checkout.WAYS)
    assert all(
        len(counts) == len(bench_checkout.CART_SIZES) for counts in statements.values()
    )
    assert [c.checkouts for c in cells] == [checkouts] * len(cells)
    text = report.render(
        cells=cells,
        statements=statements,
        cart_sizes=bench_checkout.CART_SIZES,
        server=report.server_facts(connection),
        load=report.load_average(),
        command="pytest",
        checkouts=checkouts,
        minutes=0.0,
    )
    assert "hot SKU" in text and "spread SKUs" in text


@on_the_test_database
def test_a_cell_pair_is_measured_in_turns_that_alternate_the_ways(monkeypatch):
    clients, checkouts, rounds = 2, 4, 2
    per_turn = clients * (checkouts // rounds // clients + 1)
    shop = bench_checkout.build_shop(customers=per_turn, spread=clients)
    order = []
    real = bench_checkout.run_cell

    def run_cell(shop, way, scenario, clients, checkouts):
        order.append(way)
        return real(shop, way, scenario, clients, checkouts)

    args = bench_checkout.parse_args(
        ["--checkouts", str(checkouts), "--clients", str(clients), "--rounds", "2"]
    )
    monkeypatch.setattr(bench_checkout, "run_cell", run_cell)
    cells = bench_checkout.interleaved(shop, "spread SKUs", clients, args)

    assert order == [*bench_checkout.WAYS] * rounds
    assert [c.way for c in cells] == list(bench_checkout.WAYS)
    assert [c.checkouts for c in cells] == [checkouts, checkouts]
    assert [len(c.latencies) for c in cells] == [checkouts, checkouts]
    text = report.render(
        cells=cells,
        statements={way: [13] for way in bench_checkout.WAYS},
        cart_sizes=[1],
        server=report.server_facts(connection),
        load=None,
        command="pytest",
        checkouts=checkouts,
        minutes=0.0,
        rounds=rounds,
    )
    assert "in 2 turns that alternate the app and the function" in text


@on_the_test_database
def test_app_place_refuses_a_checkout_that_places_no_order():
    shop = bench_checkout.build_shop(customers=1, spread=1)

    # The cart is empty: checkout returns its refusal, and the benchmark
    # must stop instead of timing it.
    with pytest.raises(bench_checkout.CheckoutFailed, match="cart_empty"):
        bench_checkout.app_place(shop.customers[0])


@on_the_test_database
def test_the_rls_benchmark_measures_a_tiny_seed_and_renders_its_report():
    plan = plan_for(
        "small", products=20, variants=40, customers=10, reviews=10, orders=120
    )
    result = seed_database(plan=plan)
    reads = bench_rls.build_reads(random.Random(22))

    bench_rls.measure(reads, repeat=1)

    assert all(len(read.seconds["rls"]) == 5 for read in reads)
    text = bench_rls.render(
        reads,
        server=report.server_facts(connections["default"]),
        load=report.load_average(),
        command="pytest",
        orders=result.rows["orders_order"],
        lines=result.rows["orders_order_line"],
        minutes=0.0,
    )
    assert "revenue by month" in text
