"""Run functions at the same moment in real threads, each with its own connection."""

import threading

from django.db import connections


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
