"""python manage.py drill_checkouts: place checkouts, print each acknowledged order.

A client for crash and recovery drills (orders/drill.py). Each line on
stdout is one JSON object for an order whose checkout returned success,
printed and flushed only after it did:

    {"order": 812, "total": "59.97", "status": "paid", "customer": 7, "at": "..."}

so the lines are exactly the orders a client was told are placed. When the
database stops answering, each worker ends with one line on stderr; the
command then exits 0, as it does when it placed at least one order.
"""

import json
import random
import threading
import time
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError

from orders.drill import (
    Ack,
    Budget,
    ConnectionLost,
    connection_lost,
    drill_customers,
    drill_skus,
    drill_worker,
    first_line,
)


def _part(value: str) -> tuple[int, int]:
    part, _, parts = value.partition("/")
    part, parts = int(part), int(parts or 1)
    if not 1 <= part <= parts:
        raise ValueError(value)
    return part, parts


class Command(BaseCommand):
    help = (
        "Place checkouts through the order services for seeded customers and "
        "print one JSON line per order acknowledged; stop after --count "
        "checkouts or --seconds, whichever comes first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, help="checkouts to try, in all")
        parser.add_argument("--seconds", type=float, help="stop after this long")
        parser.add_argument("--workers", type=int, default=2, help="threads")
        parser.add_argument("--seed", type=int, default=0, help="random seed")
        parser.add_argument(
            "--part",
            type=_part,
            default=(1, 1),
            help="K/N: use the K-th of N disjoint sets of customers, so that "
            "N drill processes never share a cart (default: 1/1)",
        )

    def handle(self, *args, count, seconds, workers, seed, part, **options):
        if count is None and seconds is None:
            raise CommandError("Give --count, --seconds or both.")
        part, parts = part
        try:
            customers = drill_customers(part=part, parts=parts)
            skus = drill_skus()
        except Exception as exc:
            if not connection_lost(exc):
                raise
            # Gone before the drill began: nothing was placed, nothing to say.
            self.stderr.write(f"drill: connection lost at start: {first_line(exc)}")
            return
        if len(customers) < workers or not skus:
            raise CommandError(
                f"{len(customers)} customer(s) and {len(skus)} SKU(s) in stock "
                f"for {workers} worker(s): seed the database first "
                "(python manage.py seed --scale small)."
            )
        deadline = None if seconds is None else time.monotonic() + seconds
        budget = Budget(count, deadline, time.monotonic)
        lock = threading.Lock()
        outcomes = []

        def acknowledge(ack: Ack) -> None:
            line = json.dumps(asdict(ack))
            with lock:
                self.stdout.write(line)
                # At once: the client may be killed a moment later.
                self.stdout.flush()

        def work(index: int) -> None:
            try:
                acks = drill_worker(
                    # Disjoint within the process too: one cart, one worker.
                    customers=customers[index::workers],
                    skus=skus,
                    budget=budget,
                    rng=random.Random(f"{seed}-{part}-{index}"),
                    acknowledge=acknowledge,
                )
                outcomes.append(("done", acks))
            except ConnectionLost as exc:
                self.stderr.write(f"drill worker {index}: connection lost: {exc}")
                outcomes.append(("lost", 0))
            except BaseException as exc:
                self.stderr.write(f"drill worker {index}: {type(exc).__name__}: {exc}")
                outcomes.append(("error", 0))
                raise

        threads = [
            threading.Thread(target=work, args=(i,), daemon=True)
            for i in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        placed = sum(acks for _, acks in outcomes)
        lost = any(kind == "lost" for kind, _ in outcomes)
        failed = any(kind == "error" for kind, _ in outcomes)
        if failed or not (placed or lost):
            raise CommandError(
                f"{placed} order(s) placed; see the errors above "
                "(a worker that failed for another reason than a lost "
                "connection is a bug)."
            )
