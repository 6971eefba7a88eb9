"""A primary killed in the middle of checkouts loses no acknowledged order.

On a scratch cluster of its own (shop/scratch_cluster.py), never the dev
primary: several drill clients (`manage.py drill_checkouts`) place orders
through the order services; once some are acknowledged, the postmaster is
SIGKILLed: no shutdown checkpoint, nothing in shared memory written out, as
after a crash or the OOM killer. (The kernel's page cache survives it, so
this proves what a commit's WAL flush promises, not what fsync adds against
a power cut.) The restarted server replays its WAL (crash recovery), the
shop's own recovery settles the checkouts the crash cut between their
phases (`manage.py checkout_recover`), and then:

- every order a client was told is placed is there, as it was told;
- stock, the stock ledger, order totals and the payment gateway's books
  agree (tests/orders/sql/crash_invariants.sql);
- no reservation or checkout is left half done.

CRASH_CLIENTS (default 4) drill processes of two threads each;
CRASH_SECONDS (default 20) bounds how long they may run and how long the
test waits for their first acknowledgements.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shop.scratch_cluster import ROOT, ScratchCluster, sweep_orphans
from shop.sql_files import read_sql

pytestmark = [pytest.mark.crash, pytest.mark.concurrency]

CLIENTS = int(os.environ.get("CRASH_CLIENTS", "4"))
SECONDS = float(os.environ.get("CRASH_SECONDS", "20"))
WORKERS = 2
# Kill once this many orders are acknowledged and checkouts have run this
# long since the first: every phase of a checkout is then in flight somewhere.
KILL_AFTER_ACKS = 10
KILL_AFTER_SECONDS = 1.5
# A client notices the dead server at its next statement and ends. Past
# this grace it is killed: an unfinished checkout is not an acknowledged one.
CLIENT_GRACE_SECONDS = 10


class Client:
    """One drill process, its acknowledgements read as they are printed."""

    def __init__(self, cluster: ScratchCluster, index: int, stderr_path: Path):
        self.stderr_path = stderr_path
        self.acks: list[dict] = []
        self.killed = False
        self.started = time.monotonic()
        with open(stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "drill_checkouts"]
                + ["--seconds", str(SECONDS), "--workers", str(WORKERS)]
                + ["--seed", str(index), "--part", f"{index}/{CLIENTS}"],
                cwd=ROOT,
                # Unpooled: a pool would wait DATABASE_POOL_TIMEOUT (10 s)
                # for the dead server to come back before the client gave
                # up, as a web request does; here the server stays down
                # until every client has ended, so that wait is time lost.
                env={**cluster.env(), "DATABASE_POOL_ENABLED": "0"},
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.acks.append(json.loads(line))

    def finish(self, deadline: float) -> None:
        try:
            self.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            self.killed = True
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=5)

    def stop_now(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def cluster():
    # What a killed run left behind would hold a port and memory for good.
    sweep_orphans()
    # The pid in the name: two test runs at once get two clusters.
    scratch = ScratchCluster(f"crash-{os.getpid()}")
    try:
        scratch.initdb()
        scratch.start()
        scratch.bootstrap_shop(seed_scale="small")
        yield scratch
    finally:
        scratch.destroy()


def scalar(cluster, sql, params=None):
    with cluster.superuser("shop") as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_a_killed_primary_keeps_every_acknowledged_order(cluster, tmp_path):
    seeded_up_to = scalar(cluster, "SELECT COALESCE(max(id), 0) FROM orders_order")
    clients = [
        Client(cluster, index, tmp_path / f"client{index}.err")
        for index in range(1, CLIENTS + 1)
    ]
    try:
        acked = wait_for_acks(clients)
        killed_at = time.monotonic()
        pid = cluster.kill()
        deadline = time.monotonic() + CLIENT_GRACE_SECONDS
        for client in clients:
            client.finish(deadline)
        clients_gone = time.monotonic() - killed_at
    finally:
        for client in clients:
            client.stop_now()
    acks = [ack for client in clients for ack in client.acks]
    # 0: the connection was lost (or the time was up); anything else is a
    # bug in the drill or the shop, which its stderr shows.
    failed = [c for c in clients if not c.killed and c.process.returncode != 0]
    assert not failed, "\n".join(c.stderr()[-3000:] for c in failed)

    log_before = len(cluster.log_text())
    cluster.start()
    recovered = cluster.log_text()[log_before:]
    assert "database system was interrupted" in recovered or (
        "automatic recovery in progress" in recovered
    ), recovered
    interrupted = scalar(
        cluster, "SELECT count(*) FROM orders_order WHERE status = 'pending'"
    )
    recover = cluster.manage(
        "checkout_recover",
        "--minutes",
        "0",
        "--captured-minutes",
        "0",
        capture=True,
        check=False,
    )
    assert recover.returncode == 0, recover.stdout + recover.stderr

    found = orders_as_stored(cluster, [ack["order"] for ack in acks])
    print(
        f"\ncrash drill: {len(acks)} order(s) acknowledged ({acked} when the "
        f"postmaster, pid {pid}, was killed "
        f"{killed_at - clients_started(clients):.1f} s after the clients "
        f"started; they were gone {clients_gone:.1f} s later, "
        f"{sum(c.killed for c in clients)} of them killed); "
        f"{interrupted} checkout(s) left pending; {len(found)} acknowledged "
        "order(s) found after recovery; "
        f"recovery: {recover.stdout.strip()}"
    )
    assert len(acks) >= KILL_AFTER_ACKS
    assert len({ack["order"] for ack in acks}) == len(acks), "an order acked twice"
    missing = [ack for ack in acks if ack["order"] not in found]
    assert not missing, f"acknowledged, then lost in the crash: {missing}"
    changed = [
        (ack, found[ack["order"]])
        for ack in acks
        if found[ack["order"]] != (ack["total"], ack["status"], ack["customer"])
    ]
    assert not changed, f"acknowledged as one thing, stored as another: {changed}"

    with cluster.superuser("shop") as conn:
        cursor = conn.execute(
            read_sql("tests/orders/sql/crash_invariants.sql"),
            {"seeded_up_to": seeded_up_to},
        )
        names = [column.name for column in cursor.description]
        broken = {
            name: count
            for name, count in zip(names, cursor.fetchone(), strict=True)
            if count
        }
    assert not broken, f"invariants broken after crash and recovery: {broken}"


def wait_for_acks(clients) -> int:
    """Wait until checkouts are in full flight; the acknowledgements so far."""
    deadline = time.monotonic() + SECONDS
    first = None
    while time.monotonic() < deadline:
        acked = sum(len(client.acks) for client in clients)
        if acked and first is None:
            first = time.monotonic()
        if acked >= KILL_AFTER_ACKS and time.monotonic() - first >= KILL_AFTER_SECONDS:
            return acked
        if all(client.process.poll() is not None for client in clients):
            break
        time.sleep(0.05)
    errors = "\n".join(client.stderr()[-3000:] for client in clients)
    pytest.fail(f"only {acked} order(s) acknowledged in {SECONDS} s:\n{errors}")


def clients_started(clients) -> float:
    return min(client.started for client in clients)


def orders_as_stored(cluster, order_ids) -> dict:
    with cluster.superuser("shop") as conn:
        rows = conn.execute(
            read_sql("tests/orders/sql/crash_acked_orders.sql"),
            {"order_ids": order_ids},
        ).fetchall()
    return {
        order_id: (total, status, customer)
        for order_id, total, status, customer in rows
    }
