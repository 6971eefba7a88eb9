"""Benchmarks (`make bench`): measured here, written down in docs/benchmarks.md.

Importing the package points Django at bench/settings.py, whatever the shell
exports, so that a benchmark can never create or drop a database other than
its own scratch one. Only when nothing has configured Django yet: the test
suite's smoke test of the benchmarks (tests/bench/) imports them under the
suite's settings, on its own test database, and must leave those in place.
"""

import os

import django
from django.conf import settings

if not settings.configured:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    django.setup()
