"""Run functions at the same moment in real threads, each with its own connection."""

import threading
import time

from django.db import connection, connections, transaction


def run_concurrently(funcs, *, timeout: float = 60.0):
    """Start every func at once (a barrier); return (results, errors) in order."""
    barrier = threading.Barrier(len(funcs))
    results = [None] * len(funcs)
    errors = [None] * len(funcs)

    def worker(index, func):
        try:
            barrier.wait(timeout)
            results[index] = func()
        except BaseException as exc:  # reported to the test, never swallowed
            errors[index] = exc
        finally:
            # Each thread has its own Django connections; close them, or the
            # test database could not be dropped at the end of the session.
            connections.close_all()

    threads = [
        threading.Thread(target=worker, args=(i, f), name=f"racer-{i}")
        for i, f in enumerate(funcs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {timeout}s: {stuck}"
    return results, errors


def one_shot(func):
    """Wrap func so that only its first call in each thread does anything."""
    local = threading.local()

    def wrapper():
        if not getattr(local, "done", False):
            local.done = True
            func()

    return wrapper


def second_waits_for_first(first_write, second_write, *, timeout: float = 30.0):
    """Run two writes so that the second starts while the first is uncommitted.

    The first runs in a transaction held open until the second is seen
    waiting for a lock, or is done; then it commits. A design that makes the
    second wait for the first (a lock) shows the wait; one that does not
    lets the second finish on a snapshot without the first's write, which
    is the race at its worst. Returns the three threads' errors (first,
    second, referee).
    """
    first_done, second_done = threading.Event(), threading.Event()
    may_commit = threading.Event()
    pids = {}

    def first():
        with transaction.atomic():
            first_write()
            first_done.set()
            assert may_commit.wait(timeout), "the referee never let the first commit"

    def second():
        assert first_done.wait(timeout)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids["second"] = cursor.fetchone()[0]
        with transaction.atomic():
            second_write()
        second_done.set()

    def referee():
        assert first_done.wait(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if second_done.is_set() or (
                "second" in pids and waits_for_a_lock(pids["second"])
            ):
                may_commit.set()
                return
            time.sleep(0.01)  # a poll of the server's view, not a race's timing
        raise AssertionError("the second writer neither waited nor finished")

    _, errors = run_concurrently([first, second, referee])
    return errors


def waits_for_a_lock(pid) -> bool:
    # As shop_app: pg_stat_activity shows a session's wait only to its own
    # role (or to pg_read_all_stats).
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
            [pid],
        )
        row = cursor.fetchone()
    return bool(row and row[0])
