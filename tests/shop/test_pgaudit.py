"""pgaudit on the local primary: what it logs, read back from the server's log.

scripts/services.sh preloads pgaudit when its package is installed (.ci/run
installs it) and sends the server's log to var/log/primary.log. Object
auditing logs what shop_auditor holds privileges on
(shop/sql/audit/pgaudit_object_grants_v01.sql); session auditing logs DDL
and role changes. Without pgaudit, or away from the local cluster, these
tests skip and say why.
"""

import re
import uuid

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import override_settings

from shop.accounts.services import customer_tax_id_set
from tests.accounts.factories import CustomerFactory

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

SERVER_LOG = settings.BASE_DIR / "var" / "log" / "primary.log"


@pytest.fixture
def server_log():
    """A function returning what the server logged since the test started."""
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pgaudit'")
        loaded = cursor.fetchone() is not None
    if not loaded:
        pytest.skip(
            "pgaudit is not loaded: install it (Debian: apt-get install "
            "postgresql-15-pgaudit) and run scripts/services.sh up, which adds "
            "it to shared_preload_libraries and restarts the primary"
        )
    if not SERVER_LOG.is_file():
        pytest.skip(f"no server log at {SERVER_LOG}: not the local cluster")
    start = SERVER_LOG.stat().st_size

    def since_start() -> str:
        with SERVER_LOG.open(encoding="utf-8", errors="replace") as log:
            log.seek(start)
            return log.read()

    return since_start


# A log entry starts with its timestamp; a statement with newlines spans lines.
ENTRY_START = re.compile(r"^(?=\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", re.MULTILINE)


def audit_entries(text: str, marker: str) -> list[str]:
    """The AUDIT entries of `text` that mention `marker` (one statement each)."""
    return [e for e in ENTRY_START.split(text) if "AUDIT:" in e and marker in e]


def run(sql, params=None, using="default"):
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)


def test_reading_the_encrypted_tax_id_is_logged_by_object_and_the_phone_is_not(
    server_log,
):
    marker = f"probe-{uuid.uuid4().hex}"
    run(f"SELECT tax_id_encrypted FROM accounts_customer WHERE '{marker}' <> ''")
    run(f"SELECT phone FROM accounts_customer WHERE '{marker}-phone' <> ''")

    (entry,) = audit_entries(server_log(), marker)
    assert "AUDIT: OBJECT," in entry
    assert ",READ,SELECT,TABLE,public.accounts_customer," in entry
    assert f"{marker}-phone" not in entry  # the column grant chose tax ids only


@override_settings(FIELD_ENCRYPTION_KEYS="7:pgaudit-must-never-see-this-key")
def test_a_tax_id_write_is_logged_without_its_key_or_plaintext(server_log):
    customer = CustomerFactory()
    customer_tax_id_set(customer_id=customer.pk, tax_id="GB-SECRET-TAX-ID")

    logged = server_log()
    (write,) = audit_entries(logged, "pgp_sym_encrypt")
    assert "AUDIT: OBJECT," in write
    assert ",WRITE,UPDATE,TABLE,public.accounts_customer," in write
    # Bound server-side (shop/crypto.py) and pgaudit.log_parameter = off.
    assert "pgaudit-must-never-see-this-key" not in logged
    assert "GB-SECRET-TAX-ID" not in logged


def test_ddl_is_logged_for_every_session(server_log):
    table = f"lab_pgaudit_{uuid.uuid4().hex[:12]}"
    with transaction.atomic(using="owner"):
        run(f"CREATE TABLE {table} (id integer)", using="owner")
        transaction.set_rollback(True, using="owner")

    (entry,) = audit_entries(server_log(), table)
    assert "AUDIT: SESSION," in entry
    assert ",DDL,CREATE TABLE," in entry
