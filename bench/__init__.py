"""Benchmarks (`make bench`): measured here, written down in docs/benchmarks.md.

Importing the package points Django at bench/settings.py, whatever the shell
exports, so that a benchmark can never create or drop a database other than
its own scratch one.
"""

import os

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
django.setup()
