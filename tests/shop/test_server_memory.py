"""The local servers run with scripts/pg/memory.conf's shared_buffers (chapter 18).

scripts/services.sh includes the file from the primary's and the replica's
postgresql.conf, and restarts or reloads a running cluster whose values differ. Away
from those clusters (docker compose passes the same values on its command
line, tests/shop/test_compose.py checks them) the tests skip and say why.
"""

import pytest
from django.db import connections

from shop import pgaudit
from tests.pg_conf import pg_conf

MEMORY = pg_conf("memory.conf")

pytestmark = pytest.mark.django_db(databases=["default", "replica"])


@pytest.mark.parametrize("alias", ["default", "replica"])
@pytest.mark.parametrize("name", ["shared_buffers", "effective_cache_size"])
def test_the_server_runs_with_the_files_value(alias, name):
    if pgaudit.server_log() is None:
        pytest.skip("not the local clusters of scripts/services.sh")
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_bytes(current_setting(%s)) = pg_size_bytes(%s)",
            [name, MEMORY[name]],
        )
        assert cursor.fetchone()[0], f"{alias}: {name} is not {MEMORY[name]}"
